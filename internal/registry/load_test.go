package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// Artifacts much larger than a chunk, and chunk sizes around the artifact's
// size, round-trip; the metadata counts the chunks; several pipelines are
// used when the artifact exceeds one.
func TestRedisChunking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.Client(t)
	m := testModel(t, 300, 16, 7)
	var buf bytes.Buffer
	if err := mf.Write(&buf, m.WithVersion("20261123T120501Z-abcdef")); err != nil {
		t.Fatal(err)
	}
	size := buf.Len() // every version name has the same length
	for _, tc := range []struct {
		name      string
		chunkSize int
		batch     int
	}{
		{"smallest chunks", minChunkSize, pipelineBytes},
		{"many chunks, several pipelines", 1000, 3000},
		{"one pipeline per chunk", 1000, 1},
		{"artifact size", size, pipelineBytes},
		{"one byte less", size - 1, pipelineBytes},
		{"one byte more", size + 1, pipelineBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := NewRedis(c, Options{Prefix: redistest.Prefix(t, c), ChunkSize: tc.chunkSize})
			if err != nil {
				t.Fatal(err)
			}
			reg.batch = tc.batch
			v, err := reg.Publish(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if v.Size != int64(size) {
				t.Errorf("size %d, want %d", v.Size, size)
			}
			n, err := c.HGet(ctx, reg.metaKey(v.Name()), "chunks").Int()
			if err != nil {
				t.Fatal(err)
			}
			if want := (size + tc.chunkSize - 1) / tc.chunkSize; n != want {
				t.Errorf("chunks = %d, want %d", n, want)
			}
			if err := c.Get(ctx, reg.chunkKey(v.Name(), n)).Err(); !errors.Is(err, redis.Nil) {
				t.Errorf("chunk %d beyond the count: %v, want none", n, err)
			}
			got, err := reg.Load(ctx, v.Name())
			if err != nil {
				t.Fatal(err)
			}
			sameModel(t, got, m)
		})
	}
}

// Every kind of damage to a stored version is an error wrapping
// mf.ErrCorrupt, never a model.
func TestRedisLoadRejectsDamage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.Client(t)
	flip := func(key string, off int64) func(*testing.T) {
		return func(t *testing.T) {
			b, err := c.GetRange(ctx, key, off, off).Bytes()
			if err != nil || len(b) != 1 {
				t.Fatalf("read byte %d of %s: %v", off, key, err)
			}
			if err := c.SetRange(ctx, key, off, string([]byte{b[0] ^ 0x40})).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	do := func(args ...any) func(*testing.T) {
		return func(t *testing.T) {
			if err := c.Do(ctx, args...).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const chunkSize = 512
	for _, tc := range []struct {
		name   string
		damage func(r *Redis, v Version) func(*testing.T)
	}{
		{"magic", func(r *Redis, v Version) func(*testing.T) { return flip(r.chunkKey(v.Name(), 0), 0) }},
		{"header", func(r *Redis, v Version) func(*testing.T) { return flip(r.chunkKey(v.Name(), 0), 30) }},
		{"factor in a middle chunk", func(r *Redis, v Version) func(*testing.T) { return flip(r.chunkKey(v.Name(), 5), 100) }},
		{"checksum in the last chunk", func(r *Redis, v Version) func(*testing.T) {
			last := int((v.Size - 1) / chunkSize)
			return flip(r.chunkKey(v.Name(), last), (v.Size-1)%chunkSize)
		}},
		{"missing chunk", func(r *Redis, v Version) func(*testing.T) { return do("DEL", r.chunkKey(v.Name(), 3)) }},
		{"short chunk", func(r *Redis, v Version) func(*testing.T) { return do("SET", r.chunkKey(v.Name(), 2), "short") }},
		{"bytes after the last chunk", func(r *Redis, v Version) func(*testing.T) {
			last := int((v.Size - 1) / chunkSize)
			return do("APPEND", r.chunkKey(v.Name(), last), "x")
		}},
		{"swapped chunks", func(r *Redis, v Version) func(*testing.T) {
			return func(t *testing.T) {
				a, b := r.chunkKey(v.Name(), 3), r.chunkKey(v.Name(), 4)
				if err := c.Rename(ctx, a, "tmp-"+a).Err(); err != nil {
					t.Fatal(err)
				}
				do("RENAME", b, a)(t)
				do("RENAME", "tmp-"+a, b)(t)
			}
		}},
		{"meta size", func(r *Redis, v Version) func(*testing.T) {
			return do("HSET", r.metaKey(v.Name()), "size", strconv.FormatInt(v.Size-1, 10))
		}},
		{"meta checksum", func(r *Redis, v Version) func(*testing.T) {
			return do("HSET", r.metaKey(v.Name()), "crc32c", formatCRC(v.Checksum^1))
		}},
		{"meta chunk count", func(r *Redis, v Version) func(*testing.T) {
			return do("HSET", r.metaKey(v.Name()), "chunks", "1")
		}},
		{"meta info", func(r *Redis, v Version) func(*testing.T) { return do("HSET", r.metaKey(v.Name()), "info", "{") }},
		{"meta of another version", func(r *Redis, v Version) func(*testing.T) {
			return do("HSET", r.metaKey(v.Name()), "info", `{"version":"other"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := NewRedis(c, Options{Prefix: redistest.Prefix(t, c), ChunkSize: chunkSize})
			if err != nil {
				t.Fatal(err)
			}
			v, err := reg.Publish(ctx, testModel(t, 100, 8, 3))
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(reg, v)(t)
			m, err := reg.Load(ctx, v.Name())
			if !errors.Is(err, mf.ErrCorrupt) {
				t.Fatalf("Load = %v, %v; want an error wrapping mf.ErrCorrupt", m, err)
			}
			t.Logf("error: %v", err)
		})
	}
}

// failPipelines makes every pipeline of a client fail, as a network error
// would mid-load.
type failPipelines struct{ err error }

func (failPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f failPipelines) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			c.SetErr(f.err)
		}
		return f.err
	}
}

// A Redis failure while loading is reported as what it is, not as damage.
func TestRedisLoadReportsRedisErrors(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	reg, err := NewRedis(c, Options{Prefix: prefix, ChunkSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	v, err := reg.Publish(context.Background(), testModel(t, 100, 8, 3))
	if err != nil {
		t.Fatal(err)
	}
	broken := redistest.Client(t)
	injected := errors.New("injected network failure")
	broken.AddHook(failPipelines{injected})
	other, err := NewRedis(broken, Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Load(context.Background(), v.Name()); !errors.Is(err, injected) || errors.Is(err, mf.ErrCorrupt) {
		t.Errorf("Load with failing chunk reads = %v, want the Redis error and not mf.ErrCorrupt", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := reg.Load(ctx, v.Name()); !errors.Is(err, context.Canceled) || errors.Is(err, mf.ErrCorrupt) {
		t.Errorf("Load with a cancelled context = %v, want context.Canceled and not mf.ErrCorrupt", err)
	}
}

func TestDirLoadRejectsDamage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rewrite := func(path string, edit func([]byte) []byte) func(*testing.T) {
		return func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, edit(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(d *Dir, v Version) func(*testing.T)
	}{
		{"truncated artifact", func(d *Dir, v Version) func(*testing.T) {
			return rewrite(d.file(v.Name()+artifactExt), func(b []byte) []byte { return b[:len(b)/2] })
		}},
		{"truncated artifact, metadata edited to match", func(d *Dir, v Version) func(*testing.T) {
			return func(t *testing.T) {
				rewrite(d.file(v.Name()+artifactExt), func(b []byte) []byte { return b[:len(b)-10] })(t)
				rewrite(d.file(v.Name()+metadataExt), func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"size": `+strconv.FormatInt(v.Size, 10)),
						[]byte(`"size": `+strconv.FormatInt(v.Size-10, 10)), 1)
				})(t)
			}
		}},
		{"flipped byte", func(d *Dir, v Version) func(*testing.T) {
			return rewrite(d.file(v.Name()+artifactExt), func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		}},
		{"appended byte", func(d *Dir, v Version) func(*testing.T) {
			return rewrite(d.file(v.Name()+artifactExt), func(b []byte) []byte { return append(b, 0) })
		}},
		{"artifact deleted", func(d *Dir, v Version) func(*testing.T) {
			return func(t *testing.T) {
				if err := os.Remove(d.file(v.Name() + artifactExt)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"garbled metadata", func(d *Dir, v Version) func(*testing.T) {
			return rewrite(d.file(v.Name()+metadataExt), func(b []byte) []byte { return b[:len(b)/2] })
		}},
		{"metadata checksum", func(d *Dir, v Version) func(*testing.T) {
			return rewrite(d.file(v.Name()+metadataExt), func(b []byte) []byte {
				return bytes.Replace(b, []byte(formatCRC(v.Checksum)), []byte(formatCRC(^v.Checksum)), 1)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDir(t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			v, err := d.Publish(ctx, testModel(t, 100, 8, 3))
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(d, v)(t)
			m, err := d.Load(ctx, v.Name())
			if !errors.Is(err, mf.ErrCorrupt) {
				t.Fatalf("Load = %v, %v; want an error wrapping mf.ErrCorrupt", m, err)
			}
			t.Logf("error: %v", err)
		})
	}
}

// A damaged version that becomes current is never applied: the watcher logs,
// keeps serving the old model, and moves on when a good version comes.
func TestWatchKeepsModelWhenNewVersionIsDamaged(t *testing.T) {
	damage := map[string]func(t *testing.T, reg testRegistry, v Version){
		"redis": func(t *testing.T, reg testRegistry, v Version) {
			r := reg.(*Redis)
			key := r.chunkKey(v.Name(), 1)
			b, err := r.rdb.GetRange(context.Background(), key, 7, 7).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := r.rdb.SetRange(context.Background(), key, 7, string([]byte{^b[0]})).Err(); err != nil {
				t.Fatal(err)
			}
		},
		"dir": func(t *testing.T, reg testRegistry, v Version) {
			path := reg.(*Dir).file(v.Name() + artifactExt)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			reg := be.storage(t)(Options{Now: newClock().Now, ChunkSize: 256})
			v1, err := reg.Publish(ctx, testModel(t, 50, 4, 1))
			if err != nil {
				t.Fatal(err)
			}
			type failure struct {
				version string
				err     error
			}
			failures := make(chan failure, 100)
			srv := watch(t, reg, WatchOptions{
				PollInterval:     5 * time.Millisecond,
				MaxRetryInterval: 10 * time.Millisecond,
				OnError: func(v string, err error) {
					select {
					case failures <- failure{v, err}:
					default:
					}
				},
			})
			srv.waitFor(t, v1.Name())

			v2, err := reg.Stage(ctx, testModel(t, 60, 4, 2))
			if err != nil {
				t.Fatal(err)
			}
			damage[be.name](t, reg, v2)
			if _, err := reg.Activate(ctx, v2.Name()); err != nil {
				t.Fatal(err)
			}
			// Two failed attempts: the version is retried, and refused again.
			for range 2 {
				select {
				case f := <-failures:
					if f.version != v2.Name() || !errors.Is(f.err, mf.ErrCorrupt) {
						t.Fatalf("load failure %s: %v; want %s with mf.ErrCorrupt", f.version, f.err, v2.Name())
					}
				case <-time.After(15 * time.Second):
					t.Fatal("the watcher did not try the damaged version")
				}
			}
			if got := srv.appliedVersions(); !slices.Equal(got, []string{v1.Name()}) {
				t.Fatalf("applied %v, want only %s", got, v1.Name())
			}

			v3, err := reg.Publish(ctx, testModel(t, 70, 4, 3))
			if err != nil {
				t.Fatal(err)
			}
			srv.waitFor(t, v3.Name())
			if got := srv.model.Load().NumItems(); got != 70 {
				t.Errorf("serving %d items, want 70", got)
			}
		})
	}
}
