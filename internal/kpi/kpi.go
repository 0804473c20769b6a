// Package kpi keeps the daily counters of what answers showed and what they
// led to: per UTC day × placement × source × model version × experiment
// arm, the answers, items shown, attributed views (clicks), carts,
// purchases and revenue, and the distinct users shown answers and buying
// from them (HyperLogLog). The counters live in Redis, one hash slot per
// day (keys tagged {kpi:YYYYMMDD}), expire 400 days after their day, and
// hold at most MaxDims dimension combinations a day (the rest count as
// placement "(other)"); the same counts go to Prometheus.
package kpi

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Counts are the counters of one day and dimension combination.
type Counts struct {
	Answers    int64   // answers given
	ItemsShown int64   // items in them
	Clicks     int64   // attributed views, once per (answer, item)
	Carts      int64   // attributed carts, once per (answer, item)
	Purchases  int64   // attributed purchases, once per (answer, item)
	Units      int64   // units of the attributed purchases
	Revenue    float64 // quantity × catalog price of the attributed purchases
	Users      int64   // distinct users shown an answer (estimate)
	Buyers     int64   // distinct users with an attributed purchase (estimate)
}

// Add adds o to c (Users and Buyers too, which over-counts users seen on
// several days or dimensions; see Report for per-user analysis).
func (c *Counts) Add(o Counts) {
	c.Answers += o.Answers
	c.ItemsShown += o.ItemsShown
	c.Clicks += o.Clicks
	c.Carts += o.Carts
	c.Purchases += o.Purchases
	c.Units += o.Units
	c.Revenue += o.Revenue
	c.Users += o.Users
	c.Buyers += o.Buyers
}

// Row is one day's counts of one dimension combination.
type Row struct {
	Day  time.Time // 00:00 UTC
	Dims attribution.Dims
	Counts
}

// Config tunes a Store; zero fields take the defaults.
type Config struct {
	Prefix    string
	Retention time.Duration // default 400 days after the day
	MaxDims   int           // dimension combinations per day, default 1000
	// MaxLabelSets bounds the Prometheus label combinations; default 200.
	MaxLabelSets int
	Now          func() time.Time
	// Price is an item's catalog price now (0: unknown).
	Price func(itemID string) float64
}

// OtherPlacement is the placement counted when a day holds MaxDims
// combinations already.
const OtherPlacement = "(other)"

// Store keeps the counters. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	cfg Config

	answers, shown, events *prometheus.CounterVec
	revenue                *prometheus.CounterVec
	mu                     sync.Mutex
	labelSets              map[[4]string]bool
}

// NewStore returns a Store.
func NewStore(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("kpi store: nil redis client")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 400 * 24 * time.Hour
	}
	if cfg.MaxDims <= 0 {
		cfg.MaxDims = 1000
	}
	if cfg.MaxLabelSets <= 0 {
		cfg.MaxLabelSets = 200
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	labels := []string{"placement", "source", "model_version", "arm"}
	return &Store{
		rdb: rdb, cfg: cfg, labelSets: map[[4]string]bool{},
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_answers_recorded_total",
			Help: "Answers recorded for attribution, by placement, source, model version and experiment arm (\"experiment/arm\").",
		}, labels),
		shown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_items_shown_total",
			Help: "Items in the answers recorded for attribution.",
		}, labels),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_attributed_events_total",
			Help: "Views, carts and purchases attributed to an answer (once per answer, item and type), by the answer's dimensions and type.",
		}, append(slices.Clone(labels), "type")),
		revenue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_attributed_revenue_total",
			Help: "Quantity times catalog price of the attributed purchases.",
		}, labels),
	}, nil
}

// Collectors are the Prometheus counters.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.answers, s.shown, s.events, s.revenue}
}

// labelsOf bounds the label sets: past MaxLabelSets new combinations count
// under placement "(other)" with the other labels emptied.
func (s *Store) labelsOf(d attribution.Dims) []string {
	arm := ""
	if d.Experiment != "" {
		arm = d.Experiment + "/" + d.Arm
	}
	k := [4]string{d.Placement, d.Source, d.ModelVersion, arm}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.labelSets[k] {
		if len(s.labelSets) >= s.cfg.MaxLabelSets {
			k = [4]string{OtherPlacement, "", "", ""}
		}
		s.labelSets[k] = true
	}
	return k[:]
}

// delta is what one script call adds to one day and combination.
type delta struct {
	day          time.Time
	dims         attribution.Dims
	c            Counts
	users, buyer []string
}

// AddAnswers counts written answers (by the day of their time). An answer
// without a user (an item page's) counts as an answer and its items as
// shown, but not among the distinct users.
func (s *Store) AddAnswers(ctx context.Context, answers []attribution.Answer) error {
	ds := map[string]*delta{}
	var order []*delta
	for _, a := range answers {
		d := s.deltaFor(ds, &order, a.Time, a.Dims())
		d.c.Answers++
		d.c.ItemsShown += int64(len(a.Items))
		if a.UserID != "" {
			d.users = append(d.users, a.UserID)
		}
		l := s.labelsOf(a.Dims())
		s.answers.WithLabelValues(l...).Inc()
		s.shown.WithLabelValues(l...).Add(float64(len(a.Items)))
	}
	return s.apply(ctx, order)
}

// AddHits counts attributed events (by the day they were attributed) and
// the revenue of purchases: quantity (0 counts as 1) × the price now.
func (s *Store) AddHits(ctx context.Context, hits []attribution.Hit) error {
	ds := map[string]*delta{}
	var order []*delta
	now := s.cfg.Now()
	for _, h := range hits {
		d := s.deltaFor(ds, &order, now, h.Dims)
		l := s.labelsOf(h.Dims)
		switch h.Type {
		case event.View:
			d.c.Clicks++
		case event.AddToCart:
			d.c.Carts++
		case event.Purchase:
			d.c.Purchases++
			q := int64(max(h.Quantity, 1))
			d.c.Units += q
			r := s.RevenueOf(h.ItemID, h.Quantity)
			d.c.Revenue += r
			if h.UserID != "" {
				d.buyer = append(d.buyer, h.UserID)
			}
			s.revenue.WithLabelValues(l...).Add(r)
		}
		s.events.WithLabelValues(append(l, h.Type.String())...).Inc()
	}
	return s.apply(ctx, order)
}

// RevenueOf is quantity (0 counts as 1) × the item's price now; 0 for an
// item without a valid price.
func (s *Store) RevenueOf(itemID string, quantity int32) float64 {
	if s.cfg.Price == nil {
		return 0
	}
	p := s.cfg.Price(itemID)
	if !(p > 0) || math.IsInf(p, 0) {
		return 0
	}
	return p * float64(max(quantity, 1))
}

func (s *Store) deltaFor(ds map[string]*delta, order *[]*delta, t time.Time, dims attribution.Dims) *delta {
	day := t.UTC().Truncate(24 * time.Hour)
	k := day.Format("20060102") + "\x00" + encodeDims(dims)
	d, ok := ds[k]
	if !ok {
		d = &delta{day: day, dims: dims}
		ds[k] = d
		*order = append(*order, d)
	}
	return d
}

type dayKeys struct{ dims, counts, usersPrefix string }

func (s *Store) keys(day time.Time) dayKeys {
	base := s.cfg.Prefix + ":{kpi:" + day.Format("20060102") + "}:"
	return dayKeys{dims: base + "dims", counts: base + "n", usersPrefix: base}
}

// dimsID names a combination in a day's keys.
func dimsID(enc string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(enc))
	return strconv.FormatUint(h.Sum64(), 36)
}

var otherDims = attribution.Dims{Placement: OtherPlacement}

// addScript adds one delta to a day's counters.
//
// KEYS: dims, counts, users, buyers, users of (other), buyers of (other).
// ARGV: id, encoded dims, other id, other encoded, max dims, expire-at ms,
// answers, items, clicks, carts, purchases, units, revenue, number of
// users, the users, then the buyers.
var addScript = redis.NewScript(`
local id, enc, u, b = ARGV[1], ARGV[2], KEYS[3], KEYS[4]
if redis.call('HEXISTS', KEYS[1], id) == 0 then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
    id, enc, u, b = ARGV[3], ARGV[4], KEYS[5], KEYS[6]
  end
  redis.call('HSET', KEYS[1], id, enc)
end
local names = {'a', 'i', 'c', 'k', 'p', 'q'}
for j, name in ipairs(names) do
  local v = tonumber(ARGV[6 + j])
  if v ~= 0 then redis.call('HINCRBY', KEYS[2], id .. ':' .. name, v) end
end
if tonumber(ARGV[13]) ~= 0 then redis.call('HINCRBYFLOAT', KEYS[2], id .. ':r', ARGV[13]) end
local nu = tonumber(ARGV[14])
for j = 15, 14 + nu do redis.call('PFADD', u, ARGV[j]) end
for j = 15 + nu, #ARGV do redis.call('PFADD', b, ARGV[j]) end
for _, k in ipairs({KEYS[1], KEYS[2], u, b}) do
  if redis.call('EXISTS', k) == 1 then redis.call('PEXPIREAT', k, ARGV[6]) end
end
return 1
`)

func (s *Store) apply(ctx context.Context, ds []*delta) error {
	if len(ds) == 0 {
		return nil
	}
	otherEnc := encodeDims(otherDims)
	otherID := dimsID(otherEnc)
	calls := make([]*redisconn.ScriptCall, len(ds))
	for i, d := range ds {
		k := s.keys(d.day)
		enc := encodeDims(d.dims)
		id := dimsID(enc)
		args := []any{id, enc, otherID, otherEnc, s.cfg.MaxDims, d.day.Add(24*time.Hour + s.cfg.Retention).UnixMilli(),
			d.c.Answers, d.c.ItemsShown, d.c.Clicks, d.c.Carts, d.c.Purchases, d.c.Units,
			strconv.FormatFloat(d.c.Revenue, 'f', -1, 64), len(d.users)}
		for _, u := range d.users {
			args = append(args, u)
		}
		for _, u := range d.buyer {
			args = append(args, u)
		}
		calls[i] = &redisconn.ScriptCall{Script: addScript, Keys: []string{
			k.dims, k.counts, k.usersPrefix + "u:" + id, k.usersPrefix + "b:" + id,
			k.usersPrefix + "u:" + otherID, k.usersPrefix + "b:" + otherID,
		}, Args: args}
	}
	redisconn.RunScripts(ctx, s.rdb, calls...)
	var errs []error
	for _, c := range calls {
		if err := c.Cmd.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("add to daily counters: %w", errors.Join(errs...))
	}
	return nil
}

// Read returns the rows of the days from..to (UTC days, both included), in
// day order, then by dimensions. At most 400 days.
func (s *Store) Read(ctx context.Context, from, to time.Time) ([]Row, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	if to.Before(from) {
		return nil, errors.New("read daily counters: the range ends before it starts")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return nil, errors.New("read daily counters: at most 400 days")
	}
	type dayCmds struct {
		day          time.Time
		dims, counts *redis.MapStringStringCmd
	}
	var days []dayCmds
	pipe := s.rdb.Pipeline()
	for d := from; !d.After(to); d = d.Add(24 * time.Hour) {
		k := s.keys(d)
		days = append(days, dayCmds{day: d, dims: pipe.HGetAll(ctx, k.dims), counts: pipe.HGetAll(ctx, k.counts)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read daily counters: %w", err)
	}
	var rows []Row
	var users, buyers []*redis.IntCmd
	pipe = s.rdb.Pipeline()
	for _, dc := range days {
		k := s.keys(dc.day)
		n := dc.counts.Val()
		for id, enc := range dc.dims.Val() {
			dims, err := decodeDims(enc)
			if err != nil {
				return nil, fmt.Errorf("read daily counters of %s: %w", dc.day.Format(time.DateOnly), err)
			}
			r := Row{Day: dc.day, Dims: dims}
			num := func(f string) int64 { v, _ := strconv.ParseInt(n[id+":"+f], 10, 64); return v }
			r.Answers, r.ItemsShown, r.Clicks, r.Carts = num("a"), num("i"), num("c"), num("k")
			r.Purchases, r.Units = num("p"), num("q")
			r.Revenue, _ = strconv.ParseFloat(n[id+":r"], 64)
			rows = append(rows, r)
			users = append(users, pipe.PFCount(ctx, k.usersPrefix+"u:"+id))
			buyers = append(buyers, pipe.PFCount(ctx, k.usersPrefix+"b:"+id))
		}
	}
	if len(rows) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read daily user counts: %w", err)
		}
	}
	for i := range rows {
		rows[i].Users, rows[i].Buyers = users[i].Val(), buyers[i].Val()
	}
	slices.SortFunc(rows, func(a, b Row) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return strings.Compare(encodeDims(a.Dims), encodeDims(b.Dims))
	})
	return rows, nil
}

// encodeDims is the dims, each length-prefixed, in a fixed order.
func encodeDims(d attribution.Dims) string {
	var b []byte
	for _, f := range []string{d.Placement, d.Source, d.ModelVersion, d.Experiment, d.Arm} {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	return string(b)
}

func decodeDims(s string) (attribution.Dims, error) {
	var f [5]string
	for i := range f {
		c := strings.IndexByte(s, ':')
		if c < 0 {
			return attribution.Dims{}, errors.New("malformed dimensions")
		}
		n, err := strconv.Atoi(s[:c])
		if err != nil || n < 0 || c+1+n > len(s) {
			return attribution.Dims{}, errors.New("malformed dimensions")
		}
		f[i], s = s[c+1:c+1+n], s[c+1+n:]
	}
	return attribution.Dims{Placement: f[0], Source: f[1], ModelVersion: f[2], Experiment: f[3], Arm: f[4]}, nil
}
