package recommend

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/recsys-dev/recsys/internal/profile"
)

// A push call's memory, as its gate's budget counts it. The estimates are
// of the Go memory the call holds: the profiles of a round while they are
// scored, and the answers until they are sent (items refer to the model's
// and the profiles' id strings; reasons name at most 8 boost rules).
const (
	// initialProfileBytes is the first round's estimate of a profile; later
	// rounds use what the call measured.
	initialProfileBytes = 4 << 10
	minProfileBytes     = 512
	pushItemBytes       = int64(unsafe.Sizeof(Item{})) + 8*int64(unsafe.Sizeof(""))
	pushResultBytes     = int64(unsafe.Sizeof(PushResult{})) + int64(unsafe.Sizeof(profile.Profile{}))
)

// answerBytes bounds the memory of one user's answer of up to count items.
func answerBytes(count int) int64 { return pushResultBytes + int64(count)*pushItemBytes }

// resultBytes is the memory charged for an answer with its items.
func resultBytes(r PushResult) int64 { return answerBytes(len(r.Items)) }

// profileBytes estimates the memory of a loaded profile.
func profileBytes(p profile.Profile) int64 {
	const (
		entry    = int64(unsafe.Sizeof(profile.Entry{}))
		purchase = int64(unsafe.Sizeof(profile.Purchase{}))
		imp      = int64(unsafe.Sizeof(profile.Impressions{}))
		pushed   = int64(unsafe.Sizeof(profile.Pushed{}))
		order    = int64(unsafe.Sizeof(profile.Order{}))
		when     = int64(unsafe.Sizeof(p.FirstSeen))
	)
	n := int64(unsafe.Sizeof(p)) + int64(len(p.UserID))
	for _, h := range p.History {
		n += entry + int64(len(h.ItemID))
	}
	for _, x := range p.Purchased {
		n += purchase + int64(len(x.ItemID))
	}
	for _, x := range p.Impressions {
		n += imp + int64(len(x.ItemID)) + int64(len(x.Times))*when
	}
	for _, x := range p.Pushed {
		n += pushed + int64(len(x.ItemID))
	}
	return n + int64(len(p.Orders))*order
}

// pushRound answers a prefix of ids, as many users as the gate's budget
// affords now (at most c.roundUsers, paced by the reader: nextRoundUsers),
// and returns how many ids it used.
//
// It reserves the round's bytes before loading (profiles at the call's
// estimate, answers at their bound), waiting while the budget is full;
// measures the profiles it loaded and, when they are larger than reserved,
// reserves the difference if it is free or else keeps only the users that
// fit (the rest are loaded again by the next round). The profiles are
// released once scored, the unused part of the answers' bound then, and
// each answer once emit returns: a stream whose reader is slow is held in
// emit (gRPC's flow control) with nothing but its unsent answers.
func (e *Engine) pushRound(ctx context.Context, c *pushCall, ids []string, keep func(profile.Profile) bool, emit func(PushResult) error) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	start := time.Now() // real time, not Config.Now: it paces the reader
	perUser := c.profileEst + c.answerEst
	want := min(len(ids), c.roundUsers)
	held, err := c.gate.Reserve(ctx, perUser, int64(want)*perUser)
	if err != nil {
		return 0, fmt.Errorf("reserve push memory: %w", err)
	}
	defer func() { c.gate.Release(held) }() // what is left, also on errors
	k := int(min(held/perUser, int64(want)))
	ps, err := e.cfg.PushProfiles.LoadMany(ctx, ids[:k])
	if err != nil {
		return 0, fmt.Errorf("load %d profiles: %w", k, err)
	}
	sizes := make([]int64, len(ps))
	var need, loaded int64
	for i, p := range ps {
		sizes[i] = profileBytes(p)
		loaded += sizes[i]
		need += sizes[i] + c.answerEst
	}
	if need > held {
		if c.gate.TryReserve(need - held) {
			held = need
		} else {
			// Keep the users that fit; the others are loaded again.
			j, acc := 0, int64(0)
			for j < len(ps) && acc+sizes[j]+c.answerEst <= held {
				acc += sizes[j] + c.answerEst
				j++
			}
			if j == 0 {
				// The first profile alone is larger than the estimate:
				// the next round reserves enough for it.
				c.profileEst = max(c.profileEst, sizes[0])
				return 0, nil
			}
			clear(ps[j:])
			ps, sizes, k = ps[:j], sizes[:j], j
			loaded = 0
			for _, n := range sizes {
				loaded += n
			}
		}
	}
	if len(ps) > 0 {
		// The next rounds reserve a quarter over this one's mean.
		c.profileEst = max(minProfileBytes, loaded/int64(len(ps))*5/4)
	}
	if keep != nil {
		var dropped int64
		w := 0
		for i, p := range ps {
			if keep(p) {
				ps[w], sizes[w] = p, sizes[i]
				w++
			} else {
				dropped += sizes[i] + c.answerEst
			}
		}
		clear(ps[w:])
		ps, sizes = ps[:w], sizes[:w]
		c.gate.Release(dropped)
		held -= dropped
	}
	// Release what the users kept do not need.
	var used int64
	for _, n := range sizes {
		used += n + c.answerEst
	}
	c.gate.Release(held - used)
	held = used

	results, err := e.pushAnswers(ctx, c, ps)
	if err != nil {
		return 0, err
	}
	// The profiles are no longer needed; the answers' bound is replaced by
	// their size.
	var answers int64
	for i := range results {
		answers += resultBytes(results[i])
	}
	clear(ps)
	c.gate.Release(held - answers)
	held = answers
	computed := time.Now()
	for i := range results {
		if err := emit(results[i]); err != nil {
			return 0, err
		}
		n := resultBytes(results[i])
		results[i] = PushResult{}
		c.gate.Release(n)
		held -= n
	}
	c.roundUsers = nextRoundUsers(k, computed.Sub(start), time.Since(computed))
	return k, nil
}

// nextRoundUsers sizes the next round by how the last one went: a round
// of k users took compute to answer and send to hand to gRPC. While the
// reader keeps up (send no longer than compute) rounds double up to
// pushLoadBlock; when it does not, the next round holds as many users as
// the reader took in one compute time (at least one), so a slow reader's
// stream computes no further ahead of it than one round's work.
func nextRoundUsers(k int, compute, send time.Duration) int {
	if send <= compute {
		return min(2*max(k, 1), pushLoadBlock)
	}
	n := int(float64(k) * float64(compute) / float64(send))
	return max(1, min(n, pushLoadBlock))
}
