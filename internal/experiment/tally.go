package experiment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/kpi"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Tally keeps each experiment user's totals (answers, items shown,
// attributed clicks, carts, purchases, revenue), the unit the report
// analyses. One hash per experiment and arm (tagged by the experiment),
// field = user id, value = the six totals and the Unix second of the
// user's first answer in the arm (retention and repurchase are counted
// from it); at most MaxUsersPerArm users per arm (later users are not
// counted, Overflow says how many tries), expiring Retention after the
// last write. About 85 bytes per user and experiment (docs/storage.md).
type Tally struct {
	rdb       redis.UniversalClient
	prefix    string
	MaxUsers  int
	Retention time.Duration
}

// Defaults of a Tally.
const (
	DefaultMaxUsersPerArm = 2_000_000
	DefaultTallyRetention = 400 * 24 * time.Hour
)

// NewTally returns a Tally with the given key prefix.
func NewTally(rdb redis.UniversalClient, prefix string) *Tally {
	return &Tally{rdb: rdb, prefix: prefix, MaxUsers: DefaultMaxUsersPerArm, Retention: DefaultTallyRetention}
}

func (t *Tally) key(experiment, arm string) string {
	return t.prefix + ":{xpu:" + experiment + "}:" + arm
}

// tallyScript adds deltas to users' totals. KEYS: the arm's hash. ARGV:
// max users, ttl ms, then per user: id, answers, items, clicks, carts,
// purchases, revenue, first (Unix s of the answer, 0 for hits). The value
// is the six totals and the time of the user's first answer in the arm
// (0 when unknown: a value written before the field existed).
var tallyScript = redis.NewScript(`
local skipped = 0
for j = 3, #ARGV, 8 do
  local v = redis.call('HGET', KEYS[1], ARGV[j])
  local n = {0, 0, 0, 0, 0, 0, 0}
  if v then
    local i = 1
    for f in string.gmatch(v, '%S+') do n[i] = tonumber(f); i = i + 1 end
  elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then
    skipped = skipped + 1
    n = nil
  end
  if n then
    for i = 1, 6 do n[i] = n[i] + tonumber(ARGV[j + i]) end
    local first = tonumber(ARGV[j + 7])
    if first > 0 and (n[7] == 0 or first < n[7]) then n[7] = first end
    redis.call('HSET', KEYS[1], ARGV[j], string.format('%d %d %d %d %d %.17g %d', n[1], n[2], n[3], n[4], n[5], n[6], n[7]))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return skipped
`)

type armKey struct{ xp, arm string }

func (t *Tally) apply(ctx context.Context, deltas map[armKey]map[string]*UserTotals) error {
	if len(deltas) == 0 {
		return nil
	}
	var calls []*redisconn.ScriptCall
	for k, users := range deltas {
		args := []any{t.MaxUsers, t.Retention.Milliseconds()}
		for id, u := range users {
			var first int64
			if !u.First.IsZero() {
				first = u.First.Unix()
			}
			args = append(args, id, u.Answers, u.Items, u.Clicks, u.Carts, u.Purchases, strconv.FormatFloat(u.Revenue, 'g', -1, 64), first)
		}
		calls = append(calls, &redisconn.ScriptCall{Script: tallyScript, Keys: []string{t.key(k.xp, k.arm)}, Args: args})
	}
	redisconn.RunScripts(ctx, t.rdb, calls...)
	var errs []error
	for _, c := range calls {
		if err := c.Cmd.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("experiment user totals: %w", errors.Join(errs...))
	}
	return nil
}

func deltaOf(m map[armKey]map[string]*UserTotals, xp, arm, user string) *UserTotals {
	k := armKey{xp, arm}
	if m[k] == nil {
		m[k] = map[string]*UserTotals{}
	}
	u := m[k][user]
	if u == nil {
		u = &UserTotals{}
		m[k][user] = u
	}
	return u
}

// AddAnswers counts the answers given inside experiments.
func (t *Tally) AddAnswers(ctx context.Context, answers []attribution.Answer) error {
	m := map[armKey]map[string]*UserTotals{}
	for _, a := range answers {
		if a.Experiment == "" || a.UserID == "" {
			continue
		}
		u := deltaOf(m, a.Experiment, a.Arm, a.UserID)
		if u.First.IsZero() || a.Time.Before(u.First) {
			u.First = a.Time
		}
		u.Answers++
		u.Items += int64(len(a.Items))
	}
	return t.apply(ctx, m)
}

// AddHits counts the attributed events of answers inside experiments;
// revenue is a purchase's revenue (kpi.Store.RevenueOf).
func (t *Tally) AddHits(ctx context.Context, hits []attribution.Hit, revenue func(itemID string, quantity int32) float64) error {
	m := map[armKey]map[string]*UserTotals{}
	for _, h := range hits {
		if h.Dims.Experiment == "" || h.UserID == "" {
			continue
		}
		u := deltaOf(m, h.Dims.Experiment, h.Dims.Arm, h.UserID)
		switch h.Type {
		case event.View:
			u.Clicks++
		case event.AddToCart:
			u.Carts++
		case event.Purchase:
			u.Purchases++
			if revenue != nil {
				u.Revenue += revenue(h.ItemID, h.Quantity)
			}
		}
	}
	return t.apply(ctx, m)
}

// Users calls fn with an arm's users and their totals, a page at a time
// (HSCAN: a user may come twice).
func (t *Tally) Users(ctx context.Context, xp, arm string, fn func(ids []string, totals []UserTotals) error) error {
	key := t.key(xp, arm)
	var cursor uint64
	for {
		kv, next, err := t.rdb.HScan(ctx, key, cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("read experiment %q arm %q: %w", xp, arm, err)
		}
		ids := make([]string, 0, len(kv)/2)
		totals := make([]UserTotals, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			u, err := parseTotals(kv[i+1])
			if err != nil {
				return fmt.Errorf("totals of experiment %q arm %q: %w", xp, arm, err)
			}
			ids, totals = append(ids, kv[i]), append(totals, u)
		}
		if len(ids) > 0 {
			if err := fn(ids, totals); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// Arm reads an arm's user totals (HSCAN, so a large arm does not block
// Redis) into its sufficient statistics.
func (t *Tally) Arm(ctx context.Context, xp, arm string) (ArmTotals, error) {
	out := ArmTotals{Name: arm}
	it := t.rdb.HScan(ctx, t.key(xp, arm), 0, "", 1000).Iterator()
	for it.Next(ctx) {
		if !it.Next(ctx) {
			break
		}
		u, err := parseTotals(it.Val())
		if err != nil {
			return ArmTotals{}, fmt.Errorf("totals of experiment %q arm %q: %w", xp, arm, err)
		}
		out.Add(u)
	}
	if err := it.Err(); err != nil {
		return ArmTotals{}, fmt.Errorf("read experiment %q arm %q: %w", xp, arm, err)
	}
	return out, nil
}

func parseTotals(v string) (UserTotals, error) {
	f := strings.Fields(v)
	if len(f) != 6 && len(f) != 7 {
		return UserTotals{}, errors.New("malformed user totals")
	}
	var n [5]int64
	for i := range n {
		x, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return UserTotals{}, errors.New("malformed user totals")
		}
		n[i] = x
	}
	r, err := strconv.ParseFloat(f[5], 64)
	if err != nil {
		return UserTotals{}, errors.New("malformed user totals")
	}
	out := UserTotals{Answers: n[0], Items: n[1], Clicks: n[2], Carts: n[3], Purchases: n[4], Revenue: r}
	if len(f) == 7 {
		sec, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil {
			return UserTotals{}, errors.New("malformed user totals")
		}
		if sec > 0 {
			out.First = time.Unix(sec, 0).UTC()
		}
	}
	return out, nil
}

// DeleteUser removes a user from the given experiments' arms.
func (t *Tally) DeleteUser(ctx context.Context, userID string, xps []Experiment) error {
	pipe := t.rdb.Pipeline()
	for _, e := range xps {
		for _, a := range e.Arms {
			pipe.HDel(ctx, t.key(e.Name, a.Name), userID)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("delete experiment totals of %q: %w", userID, err)
	}
	return nil
}

// Outcomes counts attributed events in the daily counters and, for
// answers inside experiments, in the users' totals (the server's
// OutcomeCounter).
type Outcomes struct {
	KPI   *kpi.Store
	Tally *Tally
}

// AddHits counts hits in both.
func (o Outcomes) AddHits(ctx context.Context, hits []attribution.Hit) error {
	return errors.Join(o.KPI.AddHits(ctx, hits), o.Tally.AddHits(ctx, hits, o.KPI.RevenueOf))
}

// Answers counts written answer records in both (an attribution.Written).
func (o Outcomes) Answers(ctx context.Context, as []attribution.Answer) error {
	return errors.Join(o.KPI.AddAnswers(ctx, as), o.Tally.AddAnswers(ctx, as))
}
