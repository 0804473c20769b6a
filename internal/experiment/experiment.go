// Package experiment defines A/B experiments on a placement's answers,
// assigns users to arms and stores the definitions in Redis.
//
// Assignment is a pure function of the experiment's salt and the user id
// (SHA-256, two independent 64-bit draws: one for the traffic share, one
// for the arm by weight), so every replica, before and after a restart,
// puts a user in the same arm without any shared state. Definitions live
// in one Redis hash with a version counter; each replica's Cache polls the
// counter (default every 250 ms, like the blocklist) and reloads on
// change, so a created, changed or stopped experiment reaches every
// replica within a second.
package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Arm is one variant.
type Arm struct {
	Name           string `json:"name"`
	Weight         uint32 `json:"weight"`
	Popular        bool   `json:"popular,omitempty"`          // non-personalized control
	MaxPerCategory int    `json:"max_per_category,omitempty"` // > 0: diversity cap
	// ExploreShare, when set, replaces the server's exploration share.
	ExploreShare *float64 `json:"explore_share,omitempty"`
	// ColdSource, when set ("popular" or "trending"), replaces what the
	// server gives users without a personalized answer.
	ColdSource string `json:"cold_source,omitempty"`
	// ModelVersion, when set, is the published model version that answers
	// the arm's users instead of the current one.
	ModelVersion string `json:"model_version,omitempty"`
}

// The cold sources an arm may name.
const (
	ColdPopular  = "popular"
	ColdTrending = "trending"
)

// Experiment splits a placement's users into arms.
type Experiment struct {
	Name         string    `json:"name"`
	Placement    string    `json:"placement"`
	Salt         string    `json:"salt"`
	TrafficShare float64   `json:"traffic_share"`
	Arms         []Arm     `json:"arms"`
	ControlArm   string    `json:"control_arm"`
	Created      time.Time `json:"created"`
	Stopped      time.Time `json:"stopped,omitzero"` // zero while running
}

// Running reports whether the experiment assigns users.
func (e Experiment) Running() bool { return e.Stopped.IsZero() }

// Limits of a definition.
const (
	MaxArms      = 10
	MaxWeight    = 10000
	maxNameBytes = 64
)

// ErrInvalid marks a definition that cannot be stored.
var ErrInvalid = errors.New("invalid experiment")

// ErrNotFound marks an unknown experiment name.
var ErrNotFound = errors.New("no such experiment")

// ErrConflict marks a name in use or a placement with a running experiment.
var ErrConflict = errors.New("experiment conflict")

// InvalidError names the field of a definition that is wrong.
type InvalidError struct{ Field, Reason string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func validName(s string) bool {
	if s == "" || len(s) > maxNameBytes {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validVersion accepts what a model registry can name.
func validVersion(s string) bool {
	if s == "" || len(s) > maxNameBytes {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ModelVersions returns the model versions the arms of the experiment
// name, each once.
func (e Experiment) ModelVersions() []string {
	var out []string
	for _, a := range e.Arms {
		if a.ModelVersion != "" && !slices.Contains(out, a.ModelVersion) {
			out = append(out, a.ModelVersion)
		}
	}
	return out
}

// Normalize fills the defaults (salt = name, control = first arm) and
// checks the definition; the error is an *InvalidError.
func (e Experiment) Normalize() (Experiment, error) {
	bad := func(f, r string) (Experiment, error) { return Experiment{}, &InvalidError{f, r} }
	if !validName(e.Name) {
		return bad("name", "must be 1 to 64 letters, digits, '-', '_' or '.'")
	}
	if e.Placement == "" || len(e.Placement) > 256 {
		return bad("placement", "must be 1 to 256 bytes")
	}
	if len(e.Salt) > 256 {
		return bad("salt", "must be at most 256 bytes")
	}
	if e.Salt == "" {
		e.Salt = e.Name
	}
	if !(e.TrafficShare > 0 && e.TrafficShare <= 1) {
		return bad("traffic_share", "must be in (0, 1]")
	}
	if len(e.Arms) < 2 || len(e.Arms) > MaxArms {
		return bad("arms", fmt.Sprintf("must be 2 to %d arms", MaxArms))
	}
	seen := map[string]bool{}
	for i, a := range e.Arms {
		f := fmt.Sprintf("arms[%d].", i)
		switch {
		case !validName(a.Name):
			return bad(f+"name", "must be 1 to 64 letters, digits, '-', '_' or '.'")
		case seen[a.Name]:
			return bad(f+"name", "is used by another arm")
		case a.Weight < 1 || a.Weight > MaxWeight:
			return bad(f+"weight", fmt.Sprintf("must be 1 to %d", MaxWeight))
		case a.MaxPerCategory < 0 || a.MaxPerCategory > 500:
			return bad(f+"max_per_category", "must be 0 to 500")
		case a.ExploreShare != nil && !(*a.ExploreShare >= 0 && *a.ExploreShare <= 1):
			return bad(f+"explore_share", "must be 0 to 1")
		case a.ColdSource != "" && a.ColdSource != ColdPopular && a.ColdSource != ColdTrending:
			return bad(f+"cold_source", "must be popular or trending")
		case a.ModelVersion != "" && !validVersion(a.ModelVersion):
			return bad(f+"model_version", "must be a model version name: 1 to 64 letters, digits, '-' or '_'")
		case a.ModelVersion != "" && a.Popular:
			return bad(f+"model_version", "must be empty for a popular arm")
		}
		seen[a.Name] = true
	}
	if e.ControlArm == "" {
		e.ControlArm = e.Arms[0].Name
	}
	if !seen[e.ControlArm] {
		return bad("control_arm", "must name one of the arms")
	}
	e.Arms = slices.Clone(e.Arms)
	return e, nil
}

// draws returns two independent uniform numbers in [0, 1) for a user.
func draws(salt, userID string) (float64, float64) {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	u1 := binary.BigEndian.Uint64(sum[0:8]) >> 11
	u2 := binary.BigEndian.Uint64(sum[8:16]) >> 11
	return float64(u1) / (1 << 53), float64(u2) / (1 << 53)
}

// Assign returns the user's arm, or false when the user is outside the
// experiment's traffic share (or it is stopped).
func (e Experiment) Assign(userID string) (Arm, bool) {
	if !e.Running() || len(e.Arms) == 0 {
		return Arm{}, false
	}
	t, a := draws(e.Salt, userID)
	if t >= e.TrafficShare {
		return Arm{}, false
	}
	var total uint64
	for _, arm := range e.Arms {
		total += uint64(arm.Weight)
	}
	x := uint64(math.Floor(a * float64(total)))
	for _, arm := range e.Arms {
		if x < uint64(arm.Weight) {
			return arm, true
		}
		x -= uint64(arm.Weight)
	}
	return e.Arms[len(e.Arms)-1], true
}

// Store keeps the definitions in Redis: one hash name -> JSON and a
// version counter, both tagged {xp}. At most MaxExperiments are kept;
// creating one more drops the oldest stopped one.
type Store struct {
	rdb           redis.UniversalClient
	defs, version string
	now           func() time.Time
	// beforeStopWrite, when set (tests), runs between Stop's read and its
	// write.
	beforeStopWrite func()
}

// MaxExperiments bounds the stored definitions.
const MaxExperiments = 200

// NewStore returns a Store with the given key prefix.
func NewStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, defs: prefix + ":{xp}:defs", version: prefix + ":{xp}:version", now: now}
}

// List returns every experiment, running first, then newest first.
func (s *Store) List(ctx context.Context) ([]Experiment, error) {
	m, err := s.rdb.HGetAll(ctx, s.defs).Result()
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	out := make([]Experiment, 0, len(m))
	for name, v := range m {
		var e Experiment
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return nil, fmt.Errorf("experiment %q: %w", name, err)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Experiment) int {
		if a.Running() != b.Running() {
			if a.Running() {
				return -1
			}
			return 1
		}
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmpString(a.Name, b.Name)
	})
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Version is the definitions' change counter.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, s.version).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

// createScript stores a definition unless the name is taken or the
// placement has a running experiment, and drops the oldest stopped
// definitions past the cap. KEYS: defs, version. ARGV: name, placement,
// json, cap.
var createScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'name' end
local all = redis.call('HGETALL', KEYS[1])
local stopped = {}
for i = 2, #all, 2 do
  local e = cjson.decode(all[i])
  local running = e['stopped'] == nil or e['stopped'] == '' or e['stopped'] == '0001-01-01T00:00:00Z'
  if running and e['placement'] == ARGV[2] then return 'placement:' .. all[i - 1] end
  if not running then stopped[#stopped + 1] = {all[i - 1], e['stopped']} end
end
local n = #all / 2
if n >= tonumber(ARGV[4]) then
  table.sort(stopped, function(a, b) return a[2] < b[2] end)
  for j = 1, math.min(#stopped, n - tonumber(ARGV[4]) + 1) do redis.call('HDEL', KEYS[1], stopped[j][1]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 'ok'
`)

// Create validates and stores a running experiment.
func (s *Store) Create(ctx context.Context, e Experiment) (Experiment, error) {
	e, err := e.Normalize()
	if err != nil {
		return Experiment{}, err
	}
	e.Created, e.Stopped = s.now().UTC().Truncate(time.Millisecond), time.Time{}
	b, err := json.Marshal(e)
	if err != nil {
		return Experiment{}, err
	}
	res, err := createScript.Run(ctx, s.rdb, []string{s.defs, s.version}, e.Name, e.Placement, string(b), MaxExperiments).Text()
	if err != nil {
		return Experiment{}, fmt.Errorf("create experiment %q: %w", e.Name, err)
	}
	switch {
	case res == "name":
		return Experiment{}, fmt.Errorf("%w: the name %q is used", ErrConflict, e.Name)
	case len(res) > 10 && res[:10] == "placement:":
		return Experiment{}, fmt.Errorf("%w: experiment %q runs on placement %q", ErrConflict, res[10:], e.Placement)
	}
	return e, nil
}

// Stop stops a running experiment (stopping a stopped one changes
// nothing). It reads and writes the definition in one WATCH/MULTI
// transaction on the definitions' hash: an Update that lands between the
// read and the write makes the transaction fail, and Stop starts over
// from the updated definition, so the update is not lost.
func (s *Store) Stop(ctx context.Context, name string) (Experiment, error) {
	var out Experiment
	stop := func(tx *redis.Tx) error {
		v, err := tx.HGet(ctx, s.defs, name).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		var e Experiment
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return fmt.Errorf("experiment %q: %w", name, err)
		}
		if !e.Running() {
			out = e
			return nil
		}
		e.Stopped = s.now().UTC().Truncate(time.Millisecond)
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if s.beforeStopWrite != nil {
			s.beforeStopWrite()
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, s.defs, name, string(b))
			pipe.Incr(ctx, s.version)
			return nil
		})
		out = e
		return err
	}
	for range maxStopAttempts {
		err := s.rdb.Watch(ctx, stop, s.defs)
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, ErrNotFound):
			return Experiment{}, err
		case !errors.Is(err, redis.TxFailedErr):
			return Experiment{}, fmt.Errorf("stop experiment %q: %w", name, err)
		}
	}
	return Experiment{}, fmt.Errorf("%w: experiment %q changed %d times while stopping it; try again", ErrConflict, name, maxStopAttempts)
}

// maxStopAttempts bounds Stop's optimistic retries (each one lost only to
// a concurrent change of some definition).
const maxStopAttempts = 10

// Update replaces the traffic share, the arms' weights and settings and
// the control arm of a running experiment; the name, placement, salt,
// creation time and the arms' names stay.
func (s *Store) Update(ctx context.Context, e Experiment) (Experiment, error) {
	old, err := s.Get(ctx, e.Name)
	if err != nil {
		return Experiment{}, err
	}
	if !old.Running() {
		return Experiment{}, fmt.Errorf("%w: experiment %q is stopped", ErrConflict, e.Name)
	}
	e.Placement, e.Salt = old.Placement, old.Salt
	if e, err = e.Normalize(); err != nil {
		return Experiment{}, err
	}
	if len(e.Arms) != len(old.Arms) {
		return Experiment{}, &InvalidError{"arms", "must name the same arms as before (stop the experiment and start a new one to change them)"}
	}
	for i, a := range e.Arms {
		if a.Name != old.Arms[i].Name {
			return Experiment{}, &InvalidError{fmt.Sprintf("arms[%d].name", i), fmt.Sprintf("must be %q as before", old.Arms[i].Name)}
		}
	}
	e.Created, e.Stopped = old.Created, time.Time{}
	b, err := json.Marshal(e)
	if err != nil {
		return Experiment{}, err
	}
	res, err := updateScript.Run(ctx, s.rdb, []string{s.defs, s.version}, e.Name, string(b)).Text()
	if err != nil {
		return Experiment{}, fmt.Errorf("update experiment %q: %w", e.Name, err)
	}
	if res != "ok" {
		return Experiment{}, fmt.Errorf("%w: experiment %q was stopped or removed meanwhile", ErrConflict, e.Name)
	}
	return e, nil
}

// updateScript replaces a definition that is still running. KEYS: defs,
// version. ARGV: name, json.
var updateScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 'gone' end
local e = cjson.decode(v)
local running = e['stopped'] == nil or e['stopped'] == '' or e['stopped'] == '0001-01-01T00:00:00Z'
if not running then return 'stopped' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 'ok'
`)

// Get returns one experiment.
func (s *Store) Get(ctx context.Context, name string) (Experiment, error) {
	v, err := s.rdb.HGet(ctx, s.defs, name).Result()
	if errors.Is(err, redis.Nil) {
		return Experiment{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return Experiment{}, fmt.Errorf("read experiment %q: %w", name, err)
	}
	var e Experiment
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return Experiment{}, fmt.Errorf("experiment %q: %w", name, err)
	}
	return e, nil
}

// Cache is a replica's copy of the running experiments by placement.
type Cache struct {
	store   *Store
	log     *slog.Logger
	running atomic.Pointer[map[string]Experiment]
	mu      sync.Mutex // serializes Sync
	version int64
}

// DefaultPoll is how often Run polls the version by default: a change
// reaches every replica within about this long (the blocklist's pace).
const DefaultPoll = 250 * time.Millisecond

// NewCache returns an empty cache; Run or Sync fill it.
func NewCache(store *Store, log *slog.Logger) *Cache {
	c := &Cache{store: store, log: log, version: -1}
	empty := map[string]Experiment{}
	c.running.Store(&empty)
	return c
}

// For returns the running experiment of a placement.
func (c *Cache) For(placement string) (Experiment, bool) {
	e, ok := (*c.running.Load())[placement]
	return e, ok
}

// Running returns the running experiments.
func (c *Cache) Running() []Experiment {
	m := *c.running.Load()
	out := make([]Experiment, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

// Sync reloads the definitions when their version changed.
func (c *Cache) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, err := c.store.Version(ctx)
	if err != nil {
		return fmt.Errorf("experiment version: %w", err)
	}
	if v == c.version {
		return nil
	}
	all, err := c.store.List(ctx)
	if err != nil {
		return err
	}
	m := map[string]Experiment{}
	for _, e := range all {
		if e.Running() {
			m[e.Placement] = e
		}
	}
	c.running.Store(&m)
	c.version = v
	return nil
}

// Run syncs every poll until ctx ends; errors are logged and retried.
func (c *Cache) Run(ctx context.Context, poll time.Duration) error {
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("sync experiments", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
