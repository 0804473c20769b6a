package synth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// Times inside a session, in milliseconds: a view follows the previous one
// after viewGap + Exp(viewGapMean), a cart follows its view after cartGap +
// Exp(cartGapMean), the checkout follows the last view after checkoutGap +
// Exp(checkoutGapMean), purchases of one checkout are a second apart, and
// a new session starts at least sessionGap after the previous one ended.
const (
	viewGap, viewGapMean         = 5_000, 30_000
	cartGap, cartGapMean         = 10_000, 30_000
	checkoutGap, checkoutGapMean = 60_000, 120_000
	purchaseGap                  = 1_000
	sessionGap                   = 60_000
	maxViewsPerSession           = 1000
	recentItems                  = 16 // how many recent views a revisit chooses from
)

// errPeriodEnd stops a user whose next event would fall after Config.End.
var errPeriodEnd = errors.New("period ended")

// Generate calls fn with the shop's events: all events of user u1 in time
// order, then those of u2, and so on. It stops at the first error of fn,
// which it returns wrapped, or when ctx is done. Each call produces the same
// events.
func (s *Shop) Generate(ctx context.Context, fn func(event.Event) error) error {
	g := &gen{
		s:        s,
		fn:       fn,
		styleCum: make([]float64, len(s.styleLogZ)),
		ready:    make([]bool, len(s.catNames)),
	}
	for i := range s.cfg.Users {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		if err := g.user(i); err != nil {
			return fmt.Errorf("generate events of %s: %w", UserID(i), err)
		}
	}
	return nil
}

// gen is the state of one Generate call, reused from user to user.
type gen struct {
	s  *Shop
	fn func(event.Event) error
	r  rng // the current user's stream
	ar rng // activity stream, kept apart so it does not disturb r
	u  taste

	// styleCum holds, for the categories in touched, the running sums of
	// the user's style weights Z_s * exp(Taste * user·offset_s), restarting
	// at each category; ready marks the categories computed.
	styleCum []float64
	ready    []bool
	touched  []int32

	recent             [recentItems]int32
	nRecent, recentPos int
	carts              []cart

	userID    string
	userNum   int
	seq       int
	remaining int
	idBuf     []byte
}

type cart struct {
	item int32
	qty  int32
}

// user generates the events of user i.
func (g *gen) user(i int) error {
	s, r := g.s, &g.r
	s.setupUser(r, i, &g.u)
	for _, c := range g.touched {
		g.ready[c] = false
	}
	g.touched = g.touched[:0]
	g.nRecent, g.recentPos = 0, 0
	g.userID, g.userNum, g.seq = UserID(i), i+1, 0

	// Budget: one event plus the user's activity share of the rest,
	// rounded at random so that the total stays on target.
	extra := float64(s.cfg.Events-s.cfg.Users) * s.activity(&g.ar, i) / s.activitySum
	g.remaining = 1 + int(extra)
	if r.float() < extra-math.Floor(extra) {
		g.remaining++
	}

	// Session starts: each is the earliest of k uniform times in what is
	// left of the period, k being the sessions the remaining budget needs,
	// so times increase, spread over the whole period and never pass End.
	t, lo := int64(0), int64(0)
	for g.remaining > 0 && lo < s.span {
		k := math.Ceil(float64(g.remaining) / s.meanSessionEvents)
		t = lo + int64((1-math.Pow(r.open(), 1/k))*float64(s.span-lo))
		var err error
		if t, err = g.session(t); err != nil {
			if errors.Is(err, errPeriodEnd) {
				return nil
			}
			return err
		}
		lo = t + sessionGap
	}
	return nil
}

// session generates one browse session starting at t and returns the time
// of its last event.
func (g *gen) session(t int64) (int64, error) {
	r, b := &g.r, &g.s.cfg.Behavior
	sessionCat := g.drawCategory()
	views := 1
	if p := 1 / b.ViewsPerSession; p < 1 {
		views += int(math.Log(r.open()) / math.Log(1-p)) // geometric, mean ViewsPerSession
	}
	views = min(views, maxViewsPerSession)
	g.carts = g.carts[:0]
	for v := 0; v < views && g.remaining > 0; v++ {
		if v > 0 {
			t += viewGap + int64(r.exp()*viewGapMean)
		}
		it := g.pickItem(sessionCat, t)
		if err := g.emit(event.View, it, t, 1); err != nil {
			return t, err
		}
		g.recent[g.recentPos] = it
		g.recentPos = (g.recentPos + 1) % recentItems
		g.nRecent = min(g.nRecent+1, recentItems)
		if g.remaining > 0 && r.float() < b.CartRate {
			t += cartGap + int64(r.exp()*cartGapMean)
			q := g.quantity()
			if err := g.emit(event.AddToCart, it, t, q); err != nil {
				return t, err
			}
			g.carts = append(g.carts, cart{item: it, qty: q})
		}
	}
	if len(g.carts) == 0 {
		return t, nil
	}
	t += checkoutGap + int64(r.exp()*checkoutGapMean)
	for _, c := range g.carts {
		if g.remaining == 0 {
			break
		}
		if r.float() >= b.PurchaseRate {
			continue
		}
		if err := g.emit(event.Purchase, c.item, t, c.qty); err != nil {
			return t, err
		}
		t += purchaseGap
	}
	return t, nil
}

// quantity is 1 with probability 0.85, 2 with 0.1275, and so on, at most 10.
func (g *gen) quantity() int32 {
	q := int32(1)
	for q < 10 && g.r.float() < 0.15 {
		q++
	}
	return q
}

// drawCategory draws a category for the current user: a preferred one by
// weight, or with probability Explore any category by popularity.
func (g *gen) drawCategory() int32 {
	if g.r.float() < g.s.cfg.Behavior.Explore {
		return int32(g.r.pick(g.s.catCum))
	}
	return g.u.cats[g.r.pick(g.u.cum)]
}

// pickItem chooses the item of a view at time t in a session of category
// sessionCat.
func (g *gen) pickItem(sessionCat int32, t int64) int32 {
	b := &g.s.cfg.Behavior
	if g.nRecent > 0 && g.r.float() < b.Revisit {
		return g.recent[g.r.intn(g.nRecent)]
	}
	c := sessionCat
	if g.r.float() >= b.Stickiness {
		c = g.drawCategory()
	}
	return g.inCategory(c, t)
}

// inCategory draws an item of category c that exists at time t, with
// probability proportional to pop(i) * exp(Taste * user·item): a style by
// the user's weights, then an item of the style by popularity. Items created
// after t are redrawn a few times; the category's top item, which exists
// from the start, is the fallback.
func (g *gen) inCategory(c int32, t int64) int32 {
	s, r := g.s, &g.r
	g.prepare(c)
	a, b := s.catStyles[c], s.catStyles[c+1]
	for range 4 {
		st := a + int32(r.pick(g.styleCum[a:b]))
		lo, hi := s.styleStart[st], s.styleStart[st+1]
		it := s.order[lo+int32(r.pick(s.cum[lo:hi]))]
		if s.created[it] <= t {
			return it
		}
	}
	return s.catTop[c]
}

// prepare computes the user's style weights of category c once per user.
func (g *gen) prepare(c int32) {
	if g.ready[c] {
		return
	}
	s, d := g.s, g.s.factors
	a, b := s.catStyles[c], s.catStyles[c+1]
	tau := s.cfg.Behavior.Taste
	x := g.styleCum[a:b]
	m := math.Inf(-1)
	for k := range x {
		st := int(a) + k
		var dot float64
		for f, uf := range g.u.vec {
			dot += float64(uf) * float64(s.styleVec[st*d+f])
		}
		x[k] = tau*dot + s.styleLogZ[st]
		m = max(m, x[k])
	}
	var run float64
	for k := range x {
		run += math.Exp(x[k] - m) // the largest weight is 1: no overflow, total >= 1
		x[k] = run
	}
	g.ready[c] = true
	g.touched = append(g.touched, c)
}

// emit hands one event to the callback.
func (g *gen) emit(typ event.Type, it int32, t int64, qty int32) error {
	s := g.s
	if t >= s.span {
		return errPeriodEnd
	}
	g.seq++
	g.remaining--
	b := append(g.idBuf[:0], 'e')
	b = strconv.AppendInt(b, int64(g.userNum), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(g.seq), 10)
	g.idBuf = b
	return g.fn(event.Event{
		ID:       string(b),
		UserID:   g.userID,
		ItemID:   s.items[it].ID,
		Type:     typ,
		Time:     s.cfg.Start.Add(time.Duration(t) * time.Millisecond),
		Quantity: qty,
	})
}
