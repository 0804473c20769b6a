// Package synth generates a synthetic shop: a catalog and a stream of view,
// cart and purchase events with planted structure, for tests, the demo and
// benchmarks.
//
// The model, in the order the generator uses it:
//
//   - Items belong to categories of skewed sizes (category c gets a share
//     proportional to (c+1)^-0.8). Each item has a popularity prior
//     (r+1)^-s for a random popularity rank r and Zipf exponent s
//     (Behavior.Popularity), a log-normal price around a per-category
//     median, a creation time (half before Start, half during the period),
//     and is available with probability Behavior.AvailableRate.
//   - Each category is split into up to 8 "styles". An item's latent vector
//     is its category's center plus its style's offset, so item vectors
//     cluster by category and, within one, by style.
//   - Each user prefers 1-3 categories (drawn in proportion to category
//     popularity, with random weights) and has a latent vector: the weighted
//     preferred-category centers plus noise.
//   - A user's choice of item in category c is proportional to
//     pop(i) * exp(Taste * user·item). Because items of one style share a
//     vector, this is sampled exactly and cheaply: pick a style s with
//     weight Z_s * exp(Taste * user·offset_s), where Z_s is the style's
//     popularity mass, then an item of s in proportion to its popularity by
//     binary search on precomputed running sums. The cost per event is
//     O(log items), independent of the catalog size; per user it is
//     O(styles of the categories the user touches * Factors).
//   - The category of a view is the session's category (with probability
//     Behavior.Stickiness), else a fresh draw; a draw is one of the user's
//     preferred categories by weight, or, with probability Behavior.Explore,
//     any category in proportion to its popularity. With probability
//     Behavior.Revisit a view goes back to an item the user viewed recently.
//   - Users arrive at heavy-tailed rates: a log-normal activity (mean 1,
//     Behavior.ActivitySkew is sigma) splits the event budget; every user
//     gets at least one event. A user's sessions are spread over
//     [Start, End) with increasing times; a session has a geometric number
//     of views (mean Behavior.ViewsPerSession), a view leads to a cart with
//     probability Behavior.CartRate, and at the end of the session each cart
//     becomes a purchase with probability Behavior.PurchaseRate. Quantities
//     are 1 with probability 0.85.
//   - Every user and the catalog have their own random stream derived from
//     Config.Seed, so the output is deterministic and users are generated
//     one at a time: memory is O(Items + Categories), never O(Events).
package synth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// Config sizes a synthetic shop. Users, Items and Events are required; the
// rest have defaults.
type Config struct {
	Users  int // number of users; each has at least one event
	Items  int // catalog size
	Events int // target number of events (>= Users); the result is within a few percent
	// Categories is the number of item categories, at most Items; 0 means
	// Items/50 clamped to [1, 30].
	Categories int
	// Factors is the dimension of the planted latent vectors; 0 means 8.
	Factors int
	// Seed selects the shop; the same Config gives the same output.
	Seed uint64
	// Start and End bound the event times; zero values mean DefaultStart
	// and Start + 90 days.
	Start, End time.Time
	// Behavior tunes the shoppers; the zero value means DefaultBehavior().
	// Set all fields when setting any (start from DefaultBehavior()).
	Behavior Behavior
}

// DefaultStart returns 2024-01-01T00:00:00Z, the start of the event period
// when Config.Start is zero.
func DefaultStart() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }

// Behavior tunes how shoppers behave. Probabilities are in [0, 1].
type Behavior struct {
	Popularity      float64 // Zipf exponent s of the popularity prior (r+1)^-s; 0 = flat
	Taste           float64 // strength of exp(Taste * user·item) within a category; 0 = taste-free
	Explore         float64 // probability that a category draw ignores the user's preferences
	Stickiness      float64 // probability that a view stays in the session's category
	Revisit         float64 // probability that a view returns to a recently viewed item
	CartRate        float64 // probability that a view leads to an add-to-cart
	PurchaseRate    float64 // probability that a cart is bought at the end of the session
	ViewsPerSession float64 // mean views per session, >= 1
	ActivitySkew    float64 // sigma of the log-normal user activity; 0 = all users alike
	AvailableRate   float64 // share of catalog items that are available
}

// DefaultBehavior is a plausible shop: Zipf popularity with exponent 1,
// 10% exploration, sessions of 4 views on average, one view in 5 carted and
// half the carts bought, a log-normal activity with sigma 1.
func DefaultBehavior() Behavior {
	return Behavior{
		Popularity:      1,
		Taste:           1.5,
		Explore:         0.1,
		Stickiness:      0.8,
		Revisit:         0.15,
		CartRate:        0.2,
		PurchaseRate:    0.5,
		ViewsPerSession: 4,
		ActivitySkew:    1,
		AvailableRate:   0.95,
	}
}

// Item is a catalog entry with its planted properties.
type Item struct {
	ID         string
	Category   string
	Price      float64 // in the shop's currency, > 0, rounded to cents
	CreatedAt  time.Time
	Available  bool
	Popularity float64 // prior weight (rank+1)^-s; the ground truth of popularity
	// Vector is the planted latent vector (category center + style
	// offset), Config.Factors long. Shared with the Shop: do not modify.
	Vector []float32
}

// User is the planted ground truth of one user.
type User struct {
	ID string
	// Categories are the preferred categories, strongest first, with their
	// Weights (summing to 1).
	Categories []string
	Weights    []float64
	// Activity is the user's relative activity (mean 1 over users); the
	// user's share of the event budget is proportional to it.
	Activity float64
	// Vector is the user's latent taste vector, Config.Factors long.
	Vector []float32
}

// Shop is a generated catalog plus what is needed to generate events. It
// holds O(Items) memory. A Shop is safe for concurrent use: Generate keeps
// its state per call.
type Shop struct {
	cfg  Config
	span int64 // End - Start in milliseconds

	items   []Item
	created []int64 // creation times in ms since Start (negative: before)
	vec     []float32
	factors int

	catNames   []string
	catCenter  []float32 // Categories x Factors
	catCum     []float64 // running sums of category popularity mass
	catTop     []int32   // each category's most popular item, created before Start
	catStyles  []int32   // styles of category c: catStyles[c] .. catStyles[c+1]
	styleVec   []float32 // style offsets, styles x Factors
	styleLogZ  []float64 // log of each style's popularity mass
	styleStart []int32   // items of style s: order[styleStart[s] : styleStart[s+1]]
	order      []int32   // item indices grouped by style
	cum        []float64 // running popularity sums within each style, aligned with order

	activitySum       float64
	meanSessionEvents float64
}

// maxStyles bounds the styles per category, and minStyleItems is the
// smallest number of items per style when a category is split.
const (
	maxStyles     = 8
	minStyleItems = 12
)

// withDefaults fills the zero fields and checks the result.
func (c Config) withDefaults() (Config, error) {
	if c.Categories == 0 {
		c.Categories = min(max(c.Items/50, 1), 30)
	}
	if c.Factors == 0 {
		c.Factors = 8
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart()
	}
	c.Start = c.Start.UTC()
	if c.End.IsZero() {
		c.End = c.Start.Add(90 * 24 * time.Hour)
	}
	c.End = c.End.UTC()
	if c.Behavior == (Behavior{}) {
		c.Behavior = DefaultBehavior()
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Users >= 1 && c.Users <= math.MaxInt32, "users must be in [1, 2^31), got %d", c.Users)
	check(c.Items >= 1 && c.Items <= math.MaxInt32, "items must be in [1, 2^31), got %d", c.Items)
	check(c.Events >= c.Users, "events must be >= users (every user has an event), got %d events for %d users", c.Events, c.Users)
	check(c.Categories >= 1 && c.Categories <= c.Items, "categories must be in [1, items=%d], got %d", c.Items, c.Categories)
	check(c.Factors >= 1 && c.Factors <= 1024, "factors must be in [1, 1024], got %d", c.Factors)
	check(c.End.Sub(c.Start) >= time.Hour, "end must be at least an hour after start, got %v .. %v", c.Start, c.End)
	b := c.Behavior
	for _, p := range []struct {
		name string
		v    float64
	}{{"explore", b.Explore}, {"stickiness", b.Stickiness}, {"revisit", b.Revisit}, {"cart rate", b.CartRate},
		{"purchase rate", b.PurchaseRate}, {"available rate", b.AvailableRate}} {
		check(p.v >= 0 && p.v <= 1, "behavior: %s must be a probability in [0, 1], got %v", p.name, p.v)
	}
	check(b.Popularity >= 0 && b.Popularity <= 10, "behavior: popularity exponent must be in [0, 10], got %v", b.Popularity)
	check(b.Taste >= 0 && b.Taste <= 20, "behavior: taste must be in [0, 20], got %v", b.Taste)
	check(b.ViewsPerSession >= 1 && b.ViewsPerSession <= 1000, "behavior: views per session must be in [1, 1000], got %v", b.ViewsPerSession)
	check(b.ActivitySkew >= 0 && b.ActivitySkew <= 5, "behavior: activity skew must be in [0, 5], got %v", b.ActivitySkew)
	if len(errs) > 0 {
		return fmt.Errorf("synth config: %w", errors.Join(errs...))
	}
	return nil
}

// New builds the shop's catalog for cfg. It costs O(Items + Users) time and
// O(Items) memory.
func New(cfg Config) (*Shop, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Shop{cfg: cfg, span: cfg.End.Sub(cfg.Start).Milliseconds(), factors: cfg.Factors}
	s.buildCatalog()
	var r rng
	for i := range cfg.Users {
		s.activitySum += s.activity(&r, i)
	}
	b := cfg.Behavior
	s.meanSessionEvents = b.ViewsPerSession * (1 + b.CartRate*(1+b.PurchaseRate))
	return s, nil
}

// Config returns the configuration with its defaults filled in.
func (s *Shop) Config() Config { return s.cfg }

// Items returns the catalog in id order (i1, i2, ...). The slice is a copy;
// the Vector fields are shared and must not be modified.
func (s *Shop) Items() []Item { return slices.Clone(s.items) }

// UserID is the id of user i (0-based): "u1" for i = 0.
func UserID(i int) string { return "u" + strconv.Itoa(i+1) }

// ItemID is the id of item i (0-based): "i1" for i = 0.
func ItemID(i int) string { return "i" + strconv.Itoa(i+1) }

// CategoryName is the name of category c (0-based): "c1" for c = 0.
func CategoryName(c int) string { return "c" + strconv.Itoa(c+1) }

// Generate builds the shop for cfg and calls fn with its events.
func Generate(ctx context.Context, cfg Config, fn func(event.Event) error) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	return s.Generate(ctx, fn)
}

// Catalog returns the catalog the shop for cfg has.
func Catalog(cfg Config) ([]Item, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s.items, nil
}

// buildCatalog draws the categories, styles, items and their vectors.
func (s *Shop) buildCatalog() {
	cfg, b := s.cfg, s.cfg.Behavior
	d := cfg.Factors
	var r rng
	r.seed(cfg.Seed, streamCatalog, 0)
	// Coordinates are scaled so that a dot product of two noise vectors has
	// variance about 1 whatever the dimension.
	scale := math.Pow(float64(d), -0.25)

	// Category sizes: every category gets an item, the rest is split in
	// proportion to (c+1)^-0.8 by largest remainder.
	nc := cfg.Categories
	sizes := make([]int, nc)
	share := make([]float64, nc)
	var total float64
	for c := range share {
		share[c] = math.Pow(float64(c+1), -0.8)
		total += share[c]
	}
	rest := cfg.Items - nc
	given := 0
	for c := range sizes {
		share[c] = share[c] / total * float64(rest)
		sizes[c] = 1 + int(share[c])
		given += int(share[c])
		share[c] -= math.Floor(share[c])
	}
	byRemainder := make([]int, nc)
	for c := range byRemainder {
		byRemainder[c] = c
	}
	slices.SortStableFunc(byRemainder, func(a, b int) int { return cmp.Compare(share[b], share[a]) })
	for k := 0; k < rest-given; k++ {
		sizes[byRemainder[k]]++
	}

	// Items: a random permutation lays the categories out, another one gives
	// the popularity ranks.
	catOf := make([]int32, cfg.Items)
	perm := r.perm(cfg.Items)
	at := 0
	for c, n := range sizes {
		for _, it := range perm[at : at+n] {
			catOf[it] = int32(c)
		}
		at += n
	}
	rank := r.perm(cfg.Items)

	// Styles: items of a category, in id order, are dealt round-robin.
	s.catStyles = make([]int32, nc+1)
	for c, n := range sizes {
		k := min(max(n/minStyleItems, 1), maxStyles)
		s.catStyles[c+1] = s.catStyles[c] + int32(k)
	}
	nStyles := int(s.catStyles[nc])
	styleOf := make([]int32, cfg.Items)
	dealt := make([]int32, nc)
	for it, c := range catOf {
		k := s.catStyles[c+1] - s.catStyles[c]
		styleOf[it] = s.catStyles[c] + dealt[c]%k
		dealt[c]++
	}

	// Vectors: category centers, style offsets.
	s.catCenter = make([]float32, nc*d)
	for i := range s.catCenter {
		s.catCenter[i] = float32(r.norm() * scale)
	}
	s.styleVec = make([]float32, nStyles*d)
	for i := range s.styleVec {
		s.styleVec[i] = float32(r.norm() * scale)
	}
	catMedian := make([]float64, nc)
	for c := range catMedian {
		catMedian[c] = math.Log(30) + 0.8*r.norm()
	}

	s.catNames = make([]string, nc)
	for c := range s.catNames {
		s.catNames[c] = CategoryName(c)
	}
	s.items = make([]Item, cfg.Items)
	s.created = make([]int64, cfg.Items)
	s.vec = make([]float32, cfg.Items*d)
	s.catTop = make([]int32, nc)
	for c := range s.catTop {
		s.catTop[c] = -1
	}
	for it := range s.items {
		c, st := catOf[it], styleOf[it]
		v := s.vec[it*d : (it+1)*d : (it+1)*d]
		for f := range v {
			v[f] = s.catCenter[int(c)*d+f] + s.styleVec[int(st)*d+f]
		}
		price := math.Round(math.Exp(catMedian[c]+0.4*r.norm())*100) / 100
		s.created[it] = int64((2*r.float() - 1) * float64(s.span)) // half before Start
		s.items[it] = Item{
			ID:         ItemID(it),
			Category:   s.catNames[c],
			Price:      max(price, 0.01),
			Available:  r.float() < b.AvailableRate,
			Popularity: math.Pow(float64(rank[it])+1, -b.Popularity),
			Vector:     v,
		}
		if top := s.catTop[c]; top < 0 || rank[it] < rank[top] {
			s.catTop[c] = int32(it)
		}
	}
	// The most popular item of each category exists from the start, so a
	// draw in a category always finds an item that already exists.
	for _, top := range s.catTop {
		if s.created[top] >= 0 {
			s.created[top] = -1 - int64(r.float()*float64(s.span))
		}
	}
	for it := range s.items {
		s.items[it].CreatedAt = cfg.Start.Add(time.Duration(s.created[it]) * time.Millisecond).Truncate(time.Second)
	}

	// Group items by style with running popularity sums.
	s.styleStart = make([]int32, nStyles+1)
	for _, st := range styleOf {
		s.styleStart[st+1]++
	}
	for st := range nStyles {
		s.styleStart[st+1] += s.styleStart[st]
	}
	s.order = make([]int32, cfg.Items)
	fill := slices.Clone(s.styleStart[:nStyles])
	for it, st := range styleOf {
		s.order[fill[st]] = int32(it)
		fill[st]++
	}
	s.cum = make([]float64, cfg.Items)
	s.styleLogZ = make([]float64, nStyles)
	catMass := make([]float64, nc)
	for st := range nStyles {
		var sum float64
		for k := s.styleStart[st]; k < s.styleStart[st+1]; k++ {
			sum += s.items[s.order[k]].Popularity
			s.cum[k] = sum
		}
		s.styleLogZ[st] = math.Log(sum)
		catMass[catOf[s.order[s.styleStart[st]]]] += sum
	}
	s.catCum = make([]float64, nc)
	var run float64
	for c, m := range catMass {
		run += m
		s.catCum[c] = run
	}
}

// activity is user i's relative activity, log-normal with mean 1. It has a
// stream of its own so that New can sum it over all users cheaply.
func (s *Shop) activity(r *rng, i int) float64 {
	r.seed(s.cfg.Seed, streamActivity, i)
	sigma := s.cfg.Behavior.ActivitySkew
	return math.Exp(sigma*r.norm() - sigma*sigma/2)
}

// User returns the planted ground truth of user i, 0 <= i < Users.
func (s *Shop) User(i int) (User, error) {
	if i < 0 || i >= s.cfg.Users {
		return User{}, fmt.Errorf("user index %d out of range [0, %d)", i, s.cfg.Users)
	}
	var r rng
	var u taste
	s.setupUser(&r, i, &u)
	out := User{ID: UserID(i), Activity: s.activity(&r, i), Vector: slices.Clone(u.vec), Weights: slices.Clone(u.weights)}
	for _, c := range u.cats {
		out.Categories = append(out.Categories, s.catNames[c])
	}
	return out, nil
}

// taste is a user's planted preferences, in buffers reused across users.
type taste struct {
	cats    []int32   // preferred categories, strongest first
	weights []float64 // their weights, summing to 1
	cum     []float64 // running sums of weights
	vec     []float32
}

// setupUser seeds r with user i's stream and draws the user's preferences.
// Generation continues on the same stream, so this must stay the first use
// of it.
func (s *Shop) setupUser(r *rng, i int, u *taste) {
	r.seed(s.cfg.Seed, streamUser, i)
	nc := len(s.catNames)
	k := min(1+r.intn(3), nc)
	u.cats = u.cats[:0]
	for len(u.cats) < k {
		c := int32(r.pick(s.catCum))
		for tries := 0; slices.Contains(u.cats, c); tries++ {
			if tries < 16 {
				c = int32(r.pick(s.catCum))
				continue
			}
			// A few very popular categories keep coming back; take the
			// first unused one so that this always ends.
			for c = 0; slices.Contains(u.cats, c); c++ {
			}
		}
		u.cats = append(u.cats, c)
	}
	u.weights = u.weights[:0]
	var sum float64
	for range u.cats {
		w := r.exp()
		u.weights = append(u.weights, w)
		sum += w
	}
	for j := range u.weights {
		u.weights[j] /= sum
	}
	// Strongest first (a stable insertion sort of at most three).
	for a := 1; a < len(u.cats); a++ {
		for b := a; b > 0 && u.weights[b] > u.weights[b-1]; b-- {
			u.weights[b], u.weights[b-1] = u.weights[b-1], u.weights[b]
			u.cats[b], u.cats[b-1] = u.cats[b-1], u.cats[b]
		}
	}
	u.cum = u.cum[:0]
	var run float64
	for _, w := range u.weights {
		run += w
		u.cum = append(u.cum, run)
	}
	d := s.factors
	scale := math.Pow(float64(d), -0.25)
	u.vec = slices.Grow(u.vec[:0], d)[:d]
	for f := range u.vec {
		v := r.norm() * scale
		for j, c := range u.cats {
			v += u.weights[j] * float64(s.catCenter[int(c)*d+f])
		}
		u.vec[f] = float32(v)
	}
}
