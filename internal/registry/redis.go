package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/mf"
)

// Redis is a registry in Redis, shared by every server of a deployment.
//
// Keys (B = "<prefix>:model:{reg}"; the {reg} hash tag puts every key of the
// registry in one cluster slot, so the scripts below run on Redis Cluster):
//
//	B:v:<version>:chunk:<i>  STRING  artifact bytes [i·ChunkSize, (i+1)·ChunkSize)
//	B:v:<version>:meta       HASH    info, chunks, chunk_size, size, crc32c, published_at
//	B:v:<version>:report     STRING  the HTML evaluation report (report.go), if stored
//	B:versions               ZSET    complete versions, scored by publish time (unix ms)
//	B:current                STRING  the version servers serve
//	B:pins                   ZSET    version → lease end (unix ms): pinned versions are not pruned (Pin)
//	B:announce               channel the new current version, published on every flip
//
// Chunks are written with a TTL of OrphanTTL. The script that writes a
// version's meta checks that every chunk is still there and removes their TTL
// in the same atomic step, so the chunks of a publish that never finished
// expire on their own: no scan for orphans, and no window in which a
// half-written version can be made current (the flip script refuses versions
// without meta).
type Redis struct {
	rdb  redis.UniversalClient
	opts Options
	base string
	// batch is the most chunk bytes one pipeline carries (pipelineBytes;
	// tests lower it to exercise several round trips with small models).
	batch int

	// hook, when set (by tests), runs between the steps of a publish; an
	// error stops the publish there, as a crash would.
	hook func(step string) error
	// random feeds version names; nil means crypto/rand (tests force clashes).
	random io.Reader
}

var (
	_ Source   = (*Redis)(nil)
	_ Notifier = (*Redis)(nil)
)

// NewRedis returns a registry kept in rdb under opts.Prefix.
func NewRedis(rdb redis.UniversalClient, opts Options) (*Redis, error) {
	if rdb == nil {
		return nil, errors.New("redis registry: nil client")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Redis{rdb: rdb, opts: o, base: o.Prefix + ":model:{reg}", batch: pipelineBytes}, nil
}

func (r *Redis) currentKey() string      { return r.base + ":current" }
func (r *Redis) versionsKey() string     { return r.base + ":versions" }
func (r *Redis) pinsKey() string         { return r.base + ":pins" }
func (r *Redis) announceChannel() string { return r.base + ":announce" }
func (r *Redis) metaKey(v string) string { return r.base + ":v:" + v + ":meta" }
func (r *Redis) chunkKey(v string, i int) string {
	return r.base + ":v:" + v + ":chunk:" + strconv.Itoa(i)
}

func (r *Redis) chunkKeys(v string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = r.chunkKey(v, i)
	}
	return keys
}

// Steps of a publish at which tests inject crashes.
const (
	stepChunksWritten = "chunks written" // artifact stored, no metadata yet
	stepStaged        = "staged"         // version complete, not current yet
)

func (r *Redis) step(s string) error {
	if r.hook == nil {
		return nil
	}
	return r.hook(s)
}

// Publish stores m as a new version and makes it current: Stage, then
// Activate. Servers watching the registry switch to it within seconds.
func (r *Redis) Publish(ctx context.Context, m *mf.Model) (Version, error) {
	return publish(ctx, r, m)
}

// Stage stores m as a new, complete version without making it current, so a
// caller can check the stored version before Activate.
func (r *Redis) Stage(ctx context.Context, m *mf.Model) (Version, error) {
	v, err := r.stage(ctx, m)
	if err != nil {
		return Version{}, err
	}
	r.prune(ctx)
	return v, nil
}

// pipelineBytes bounds the chunk bytes one pipeline carries, and so the
// memory a publish or load holds beyond the model itself.
const pipelineBytes = 16 << 20

var commitScript = redis.NewScript(`
-- KEYS[1] meta, KEYS[2] versions, KEYS[3..] chunks
-- ARGV[1] version, ARGV[2] publish time (unix ms), ARGV[3..] meta field/value pairs
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('version ' .. ARGV[1] .. ' already exists')
end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    return redis.error_reply('chunk ' .. (i - 3) .. ' of version ' .. ARGV[1] .. ' is gone (publish took longer than the orphan TTL?)')
  end
end
for i = 3, #KEYS do
  redis.call('PERSIST', KEYS[i])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

func (r *Redis) stage(ctx context.Context, m *mf.Model) (Version, error) {
	if m == nil {
		return Version{}, errors.New("publish: nil model")
	}
	name, err := r.freeName(ctx)
	if err != nil {
		return Version{}, fmt.Errorf("publish: %w", err)
	}
	m = m.WithVersion(name)
	w := &chunkWriter{ctx: ctx, rdb: r.rdb, pipe: r.rdb.Pipeline(), size: r.opts.ChunkSize, ttl: r.opts.OrphanTTL,
		batch: r.batch, key: func(i int) string { return r.chunkKey(name, i) }}
	if err := mf.Write(w, m); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", name, err)
	}
	if err := w.flush(); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", name, err)
	}
	if err := r.step(stepChunksWritten); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", name, err)
	}

	rec := record{Info: m.Info(), Size: w.sum.n, CRC32C: formatCRC(w.sum.crc), PublishedAt: r.opts.Now().UTC()}
	info, err := json.Marshal(rec.Info)
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: encode info: %w", name, err)
	}
	keys := append([]string{r.metaKey(name), r.versionsKey()}, r.chunkKeys(name, w.n)...)
	args := []any{name, rec.PublishedAt.UnixMilli(),
		"info", info,
		"chunks", w.n,
		"chunk_size", r.opts.ChunkSize,
		"size", rec.Size,
		"crc32c", rec.CRC32C,
		"published_at", rec.PublishedAt.Format(time.RFC3339Nano),
	}
	if err := commitScript.Run(ctx, r.rdb, keys, args...).Err(); err != nil {
		return Version{}, fmt.Errorf("publish %s: write metadata: %w", name, err)
	}
	return rec.version(""), nil
}

// freeName returns a new version name that no version, complete or being
// written, uses yet. Names differ by 24 random bits within a second, so a
// clash is rare, but writing a clashing name would overwrite another
// version's chunks.
func (r *Redis) freeName(ctx context.Context) (string, error) {
	for range 5 {
		name, err := newVersion(r.opts.Now(), r.random)
		if err != nil {
			return "", err
		}
		n, err := r.rdb.Exists(ctx, r.metaKey(name), r.chunkKey(name, 0)).Result()
		if err != nil {
			return "", fmt.Errorf("check version name: %w", err)
		}
		if n == 0 {
			return name, nil
		}
	}
	return "", errors.New("no free version name after 5 attempts")
}

var activateScript = redis.NewScript(`
-- KEYS[1] current, KEYS[2] meta of ARGV[1]; ARGV[1] version, ARGV[2] announce channel
-- Returns the version's meta (HGETALL), empty when it has none (nothing flipped).
local meta = redis.call('HGETALL', KEYS[2])
if #meta == 0 then
  return meta
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return meta
`)

// Activate makes a complete version current (publishing it, or rolling back
// to a kept one) and announces it to watching servers. A version that is not
// complete in the registry is refused with ErrUnknownVersion.
func (r *Redis) Activate(ctx context.Context, version string) (Version, error) {
	if err := checkVersion(version); err != nil {
		return Version{}, fmt.Errorf("activate: %w", err)
	}
	// The check for meta and the flip are one script, so a version pruned
	// concurrently can never become current; it returns the meta too, so
	// the answer needs no second read.
	kv, err := activateScript.Run(ctx, r.rdb, []string{r.currentKey(), r.metaKey(version)}, version, r.announceChannel()).StringSlice()
	if err != nil {
		return Version{}, fmt.Errorf("activate %s: %w", version, err)
	}
	if len(kv) == 0 {
		return Version{}, fmt.Errorf("activate %s: %w", version, ErrUnknownVersion)
	}
	h := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	rec, _, _, err := parseMeta(version, h)
	if err != nil {
		return Version{}, fmt.Errorf("activate %s: %w", version, err)
	}
	r.prune(ctx)
	return rec.version(version), nil
}

// Current returns the current version, or "" when none was published.
func (r *Redis) Current(ctx context.Context) (string, error) {
	v, err := r.rdb.Get(ctx, r.currentKey()).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("current model version: %w", err)
	}
	return v, nil
}

// versionsAndCurrent reads, in one round trip, the complete versions from
// rank start on (newest first) and the current version ("" when none).
func (r *Redis) versionsAndCurrent(ctx context.Context, start int64) (names []string, cur string, err error) {
	pipe := r.rdb.Pipeline()
	versions := pipe.ZRevRange(ctx, r.versionsKey(), start, -1)
	current := pipe.Get(ctx, r.currentKey())
	_, _ = pipe.Exec(ctx) // errors are read per command
	if names, err = versions.Result(); err != nil {
		return nil, "", err
	}
	cur, err = current.Result()
	if errors.Is(err, redis.Nil) {
		return names, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("current model version: %w", err)
	}
	return names, cur, nil
}

// List returns the complete versions, newest first, the current one marked.
func (r *Redis) List(ctx context.Context) ([]Version, error) {
	names, cur, err := r.versionsAndCurrent(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("list model versions: %w", err)
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(names))
	for i, v := range names {
		cmds[i] = pipe.HGetAll(ctx, r.metaKey(v))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list model versions: %w", err)
	}
	out := make([]Version, 0, len(names))
	for i, v := range names {
		h := cmds[i].Val()
		if len(h) == 0 {
			continue // pruned between the two reads
		}
		rec, _, _, err := parseMeta(v, h)
		if err != nil {
			return nil, fmt.Errorf("list model versions: %w", err)
		}
		out = append(out, rec.version(cur))
	}
	return out, nil
}

// meta reads and checks a version's metadata: the record, the number of
// chunks and the chunk size.
func (r *Redis) meta(ctx context.Context, version string) (record, int, int, error) {
	h, err := r.rdb.HGetAll(ctx, r.metaKey(version)).Result()
	if err != nil {
		return record{}, 0, 0, fmt.Errorf("read metadata: %w", err)
	}
	if len(h) == 0 {
		return record{}, 0, 0, ErrUnknownVersion
	}
	return parseMeta(version, h)
}

func parseMeta(version string, h map[string]string) (rec record, chunks, chunkSize int, err error) {
	bad := func(field string, err error) error {
		return fmt.Errorf("%w: metadata of version %s: field %s: %v", mf.ErrCorrupt, version, field, err)
	}
	if err := json.Unmarshal([]byte(h["info"]), &rec.Info); err != nil {
		return rec, 0, 0, bad("info", err)
	}
	if rec.Size, err = strconv.ParseInt(h["size"], 10, 64); err != nil {
		return rec, 0, 0, bad("size", err)
	}
	if chunks, err = strconv.Atoi(h["chunks"]); err != nil {
		return rec, 0, 0, bad("chunks", err)
	}
	if chunkSize, err = strconv.Atoi(h["chunk_size"]); err != nil {
		return rec, 0, 0, bad("chunk_size", err)
	}
	if rec.PublishedAt, err = time.Parse(time.RFC3339Nano, h["published_at"]); err != nil {
		return rec, 0, 0, bad("published_at", err)
	}
	rec.CRC32C = h["crc32c"]
	if err := rec.check(version); err != nil {
		return rec, 0, 0, err
	}
	// The chunks must tile the artifact exactly: all full but the last.
	if chunkSize < minChunkSize || chunkSize > MaxChunkSize || chunks < 1 ||
		int64(chunks-1)*int64(chunkSize) >= rec.Size || int64(chunks)*int64(chunkSize) < rec.Size {
		return rec, 0, 0, fmt.Errorf("%w: metadata of version %s: %d chunks of %d bytes cannot hold %d bytes",
			mf.ErrCorrupt, version, chunks, chunkSize, rec.Size)
	}
	return rec, chunks, chunkSize, nil
}

// Load reads a version and builds its model, verifying the artifact against
// the version's metadata (chunk count and sizes, total size, CRC-32C) and its
// own checksum (mf.Read). Damage is an error wrapping mf.ErrCorrupt (or
// mf.ErrInvalid for an intact artifact of a model that cannot serve); a
// version that is not complete in the registry, ErrUnknownVersion.
func (r *Redis) Load(ctx context.Context, version string) (*mf.Model, error) {
	if err := checkVersion(version); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	rec, chunks, chunkSize, err := r.meta(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	cr := &chunkReader{ctx: ctx, rdb: r.rdb, n: chunks, size: chunkSize, total: rec.Size, batch: r.batch,
		key: func(i int) string { return r.chunkKey(version, i) }}
	var sum verifier
	m, err := mf.Read(io.TeeReader(cr, &sum))
	if err != nil {
		// mf.Read reports any read error as corruption; a failed or missing
		// chunk is the more precise cause (a Redis error is not damage).
		if cr.err != nil {
			err = cr.err
		}
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	if err := sum.check(m, rec); err != nil {
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	return m, nil
}

// Subscribe delivers the versions announced by Activate (of any registry
// instance on this Redis) until ctx is done; then the channel is closed.
// Announcements are coalesced when the reader is busy: they are hints to
// read Current, never the state itself.
func (r *Redis) Subscribe(ctx context.Context) (<-chan string, error) {
	ps := r.rdb.Subscribe(ctx, r.announceChannel())
	// Receive waits for the server's confirmation, so an announcement made
	// after Subscribe returns is never missed.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe to model announcements: %w", err)
	}
	msgs := ps.Channel()
	out := make(chan string, 1)
	go func() {
		defer close(out)
		defer func() { _ = ps.Close() }() // a failed close of a subscription leaves nothing to do
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case out <- m.Payload:
				default: // a hint is already pending
				}
			}
		}
	}()
	return out, nil
}

var pruneScript = redis.NewScript(`
-- KEYS[1] current, KEYS[2] versions, KEYS[3] pins, KEYS[4] meta, KEYS[5] report, KEYS[6..] chunks;
-- ARGV[1] version, ARGV[2] now (unix ms)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0
end
local pin = redis.call('ZSCORE', KEYS[3], ARGV[1])
if pin and tonumber(pin) > tonumber(ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
for i = 5, #KEYS do
  redis.call('UNLINK', KEYS[i])
end
return 1
`)

// prune deletes the versions beyond the newest Keep, never the current one
// nor a pinned one (Pin).
// A failure is logged, not returned: the publish it follows has succeeded,
// and the next publish prunes again.
func (r *Redis) prune(ctx context.Context) {
	if err := r.pruneErr(ctx); err != nil {
		r.opts.Logger.WarnContext(ctx, "prune old model versions", "err", err)
	}
}

func (r *Redis) pruneErr(ctx context.Context) error {
	names, cur, err := r.versionsAndCurrent(ctx, int64(r.opts.Keep))
	if err != nil {
		return err
	}
	for _, v := range names {
		if v == cur {
			continue
		}
		n, err := r.rdb.HGet(ctx, r.metaKey(v), "chunks").Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("version %s: %w", v, err)
		}
		keys := append([]string{r.currentKey(), r.versionsKey(), r.pinsKey(), r.metaKey(v), r.reportKey(v)}, r.chunkKeys(v, n)...)
		if err := pruneScript.Run(ctx, r.rdb, keys, v, r.opts.Now().UnixMilli()).Err(); err != nil {
			return fmt.Errorf("version %s: %w", v, err)
		}
	}
	return nil
}

var pinScript = redis.NewScript(`
-- KEYS[1] versions, KEYS[2] pins; ARGV[1] version, ARGV[2] lease end, ARGV[3] now (unix ms)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local cur = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not cur or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
`)

// Pin keeps a complete version from being pruned until the lease ends
// (a later end extends it; an earlier one changes nothing), however many
// newer versions are published: servers pin the versions running
// experiment arms serve. Expired pins are dropped by the next Pin, so the
// pins never outnumber the versions. An unknown version is
// ErrUnknownVersion.
func (r *Redis) Pin(ctx context.Context, version string, until time.Time) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	ok, err := pinScript.Run(ctx, r.rdb, []string{r.versionsKey(), r.pinsKey()}, version, until.UnixMilli(), r.opts.Now().UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("pin model version %s: %w", version, err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: %s", ErrUnknownVersion, version)
	}
	return nil
}

// chunkWriter splits an artifact into chunks and writes them with pipelines
// of up to batch bytes, each chunk with a TTL until its version is
// committed. It checksums what it writes for the metadata.
type chunkWriter struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	pipe  redis.Pipeliner
	key   func(i int) string
	size  int
	ttl   time.Duration
	batch int

	buf       []byte   // the chunk being filled
	queued    [][]byte // chunks in pipe, not sent yet
	queuedLen int
	free      [][]byte // buffers of sent chunks, for reuse
	n         int      // chunks handed to a pipeline
	sum       verifier
	err       error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	_, _ = w.sum.Write(p)
	total := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			if k := len(w.free); k > 0 {
				w.buf, w.free = w.free[k-1][:0], w.free[:k-1]
			} else {
				w.buf = make([]byte, 0, w.size)
			}
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf, p = w.buf[:len(w.buf)+k], p[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.emit(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func (w *chunkWriter) emit() error {
	w.pipe.Set(w.ctx, w.key(w.n), w.buf, w.ttl)
	w.queued = append(w.queued, w.buf)
	w.queuedLen += len(w.buf)
	w.buf = nil
	w.n++
	if w.queuedLen >= w.batch {
		return w.exec()
	}
	return nil
}

func (w *chunkWriter) exec() error {
	if len(w.queued) == 0 {
		return nil
	}
	_, err := w.pipe.Exec(w.ctx)
	// Exec has sent the chunks, so their buffers can be reused.
	w.free = append(w.free, w.queued...)
	w.queued, w.queuedLen = w.queued[:0], 0
	w.pipe = w.rdb.Pipeline()
	if err != nil {
		w.err = fmt.Errorf("write chunks: %w", err)
	}
	return w.err
}

// flush writes the last, partial chunk and everything still queued.
func (w *chunkWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		if err := w.emit(); err != nil {
			return err
		}
	}
	return w.exec()
}

// chunkReader streams a version's chunks in order, fetching up to batch
// bytes per round trip, and checks each chunk's length against the
// metadata. Its own failures are kept in err so Load can report them
// precisely.
type chunkReader struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	key   func(i int) string
	n     int   // chunks
	size  int   // chunk size
	total int64 // artifact size
	batch int

	next  int      // next chunk to fetch
	queue []string // fetched, not read yet
	cur   string
	off   int
	err   error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.off == len(c.cur) {
		switch {
		case len(c.queue) > 0:
			c.cur, c.queue, c.off = c.queue[0], c.queue[1:], 0
		case c.err != nil:
			return 0, c.err
		case c.next == c.n:
			return 0, io.EOF
		default:
			c.fetch()
		}
	}
	k := copy(p, c.cur[c.off:])
	c.off += k
	return k, nil
}

func (c *chunkReader) fetch() {
	hi := min(c.n, c.next+max(1, c.batch/c.size))
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, 0, hi-c.next)
	for i := c.next; i < hi; i++ {
		cmds = append(cmds, pipe.Get(c.ctx, c.key(i)))
	}
	_, _ = pipe.Exec(c.ctx) // errors are per command, checked below
	for j, cmd := range cmds {
		i := c.next + j
		s, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			c.err = fmt.Errorf("%w: chunk %d of %d is missing", mf.ErrCorrupt, i, c.n)
			return
		}
		if err != nil {
			c.err = fmt.Errorf("read chunk %d: %w", i, err)
			return
		}
		want := c.size
		if i == c.n-1 {
			want = int(c.total - int64(c.n-1)*int64(c.size))
		}
		if len(s) != want {
			c.err = fmt.Errorf("%w: chunk %d of %d has %d bytes, want %d", mf.ErrCorrupt, i, c.n, len(s), want)
			return
		}
		c.queue = append(c.queue, s)
	}
	c.next = hi
}
