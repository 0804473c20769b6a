package registry

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redistest"
)

func TestVersionNames(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 5, 1, 0, time.FixedZone("CET", 3600))
	got, err := newVersion(at, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := regexp.MustCompile(`^20261123T110501Z-[0-9a-f]{6}$`); !want.MatchString(got) {
		t.Errorf("newVersion = %q, want to match %s", got, want)
	}
	if err := checkVersion(got); err != nil {
		t.Errorf("checkVersion(%q) = %v, want nil", got, err)
	}
	for _, tc := range []struct {
		name string
		v    string
	}{
		{"empty", ""},
		{"path", "../CURRENT"},
		{"slash", "a/b"},
		{"dot", "v1.2"},
		{"space", "v 1"},
		{"hash tag", "a{b}"},
		{"too long", strings.Repeat("a", maxVersionLen+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkVersion(tc.v); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("checkVersion(%q) = %v, want ErrUnknownVersion", tc.v, err)
			}
		})
	}
}

func TestOptionsRejected(t *testing.T) {
	c := redistest.Client(t)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"keep", Options{Keep: -1}, "keep"},
		{"small chunk", Options{ChunkSize: 10}, "chunk size"},
		{"huge chunk", Options{ChunkSize: MaxChunkSize + 1}, "chunk size"},
		{"orphan ttl", Options{OrphanTTL: -time.Second}, "orphan TTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRedis(c, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRedis error = %v, want one naming %q", err, tc.want)
			}
			if _, err := NewDir(t.TempDir(), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewDir error = %v, want one naming %q", err, tc.want)
			}
		})
	}
	if _, err := NewRedis(nil, Options{}); err == nil {
		t.Error("NewRedis(nil) succeeded")
	}
	if _, err := NewDir("", Options{}); err == nil {
		t.Error(`NewDir("") succeeded`)
	}
}

func TestPublishRoundTrip(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock()
			reg := be.storage(t)(Options{Now: clk.Now, ChunkSize: 1000})

			cur, err := reg.Current(ctx)
			if err != nil || cur != "" {
				t.Fatalf("Current of an empty registry = %q, %v; want \"\", nil", cur, err)
			}
			if vs, err := reg.List(ctx); err != nil || len(vs) != 0 {
				t.Fatalf("List of an empty registry = %v, %v; want none", vs, err)
			}

			m := testModel(t, 120, 8, 1)
			before := clk.Now()
			v, err := reg.Publish(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Current || !v.PublishedAt.After(before) || v.Info.Items != 120 {
				t.Errorf("Publish = %+v, want current, published after %v, 120 items", v, before)
			}
			if m.Version() != "trainer-version" {
				t.Errorf("Publish changed the caller's model: version %q", m.Version())
			}
			// Size and checksum describe the artifact of the stamped model.
			var buf bytes.Buffer
			if err := mf.Write(&buf, m.WithVersion(v.Name())); err != nil {
				t.Fatal(err)
			}
			if v.Size != int64(buf.Len()) || v.Checksum != crc32.Checksum(buf.Bytes(), castagnoli) {
				t.Errorf("Publish size %d, checksum %08x; artifact has %d bytes, CRC-32C %08x",
					v.Size, v.Checksum, buf.Len(), crc32.Checksum(buf.Bytes(), castagnoli))
			}

			if cur, err := reg.Current(ctx); err != nil || cur != v.Name() {
				t.Errorf("Current = %q, %v; want %q", cur, err, v.Name())
			}
			list, err := reg.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name() != v.Name() || !list[0].Current || list[0].Size != v.Size ||
				!list[0].PublishedAt.Equal(v.PublishedAt) || list[0].Checksum != v.Checksum {
				t.Errorf("List = %+v, want just %+v", list, v)
			}
			got, err := reg.Load(ctx, v.Name())
			if err != nil {
				t.Fatal(err)
			}
			if got.Version() != v.Name() {
				t.Errorf("loaded version %q, want %q", got.Version(), v.Name())
			}
			sameModel(t, got, m)
		})
	}
}

func TestStageDoesNotFlip(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			reg := be.storage(t)(Options{Now: newClock().Now})
			v1, err := reg.Publish(ctx, testModel(t, 50, 4, 1))
			if err != nil {
				t.Fatal(err)
			}
			v2, err := reg.Stage(ctx, testModel(t, 60, 4, 2))
			if err != nil {
				t.Fatal(err)
			}
			if v2.Current {
				t.Error("Stage returned a current version")
			}
			if cur, _ := reg.Current(ctx); cur != v1.Name() {
				t.Errorf("Current after Stage = %q, want %q", cur, v1.Name())
			}
			// The staged version is complete: it loads, and can be activated.
			if m, err := reg.Load(ctx, v2.Name()); err != nil || m.NumItems() != 60 {
				t.Fatalf("Load staged = %v, %v; want 60 items", m, err)
			}
			got, err := reg.Activate(ctx, v2.Name())
			if err != nil || !got.Current || got.Name() != v2.Name() {
				t.Fatalf("Activate staged = %+v, %v", got, err)
			}
			if cur, _ := reg.Current(ctx); cur != v2.Name() {
				t.Errorf("Current after Activate = %q, want %q", cur, v2.Name())
			}
		})
	}
}

func names(vs []Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name()
		if v.Current {
			out[i] += "*"
		}
	}
	return out
}

func TestKeepLastNAndRollback(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			reg := be.storage(t)(Options{Now: newClock().Now, Keep: 2, ChunkSize: 512})
			var pub []string
			publish := func(seed uint64) {
				t.Helper()
				v, err := reg.Publish(ctx, testModel(t, 40+int(seed), 4, seed))
				if err != nil {
					t.Fatal(err)
				}
				pub = append(pub, v.Name())
			}
			for seed := range uint64(4) {
				publish(seed)
			}
			list, err := reg.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := names(list), []string{pub[3] + "*", pub[2]}; !slices.Equal(got, want) {
				t.Fatalf("after 4 publishes with keep 2: List = %v, want %v", got, want)
			}
			for _, v := range pub[:2] {
				if _, err := reg.Load(ctx, v); !errors.Is(err, ErrUnknownVersion) {
					t.Errorf("Load pruned %s = %v, want ErrUnknownVersion", v, err)
				}
				if _, err := reg.Activate(ctx, v); !errors.Is(err, ErrUnknownVersion) {
					t.Errorf("Activate pruned %s = %v, want ErrUnknownVersion", v, err)
				}
			}

			// Roll back to the older kept version.
			got, err := reg.Activate(ctx, pub[2])
			if err != nil || !got.Current || got.Info.Items != 42 {
				t.Fatalf("Activate(%s) = %+v, %v; want current with 42 items", pub[2], got, err)
			}
			if m, err := reg.Load(ctx, pub[2]); err != nil || m.NumItems() != 42 {
				t.Fatalf("Load rolled-back version = %v, %v", m, err)
			}

			if list, err = reg.List(ctx); err != nil {
				t.Fatal(err)
			}
			if got, want := names(list), []string{pub[3], pub[2] + "*"}; !slices.Equal(got, want) {
				t.Fatalf("after rollback: List = %v, want %v", got, want)
			}

			// Two staged versions push the rolled-back version out of the
			// newest two, but it stays while it is current...
			stage := func(seed uint64) {
				t.Helper()
				v, err := reg.Stage(ctx, testModel(t, 40+int(seed), 4, seed))
				if err != nil {
					t.Fatal(err)
				}
				pub = append(pub, v.Name())
			}
			stage(4)
			stage(5)
			if list, err = reg.List(ctx); err != nil {
				t.Fatal(err)
			}
			if got, want := names(list), []string{pub[5], pub[4], pub[2] + "*"}; !slices.Equal(got, want) {
				t.Fatalf("after staging two: List = %v, want %v", got, want)
			}
			// ... and goes once it is not.
			if _, err := reg.Activate(ctx, pub[5]); err != nil {
				t.Fatal(err)
			}
			if list, err = reg.List(ctx); err != nil {
				t.Fatal(err)
			}
			if got, want := names(list), []string{pub[5] + "*", pub[4]}; !slices.Equal(got, want) {
				t.Fatalf("after activating the newest: List = %v, want %v", got, want)
			}
			assertStoredVersions(t, reg, pub[4], pub[5])
		})
	}
}

// assertStoredVersions checks that the storage holds data of exactly the
// given versions: pruning leaves no chunk, meta or file behind.
func assertStoredVersions(t *testing.T, reg testRegistry, want ...string) {
	t.Helper()
	ctx := context.Background()
	var stored []string
	switch r := reg.(type) {
	case *Redis:
		keys, err := redistest.Keys(ctx, r.rdb, r.base+":v:")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, _, _ := strings.Cut(strings.TrimPrefix(k, r.base+":v:"), ":")
			stored = append(stored, v)
		}
		zs, err := r.rdb.ZRange(ctx, r.versionsKey(), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(zs, want) {
			t.Errorf("versions set = %v, want %v", zs, want)
		}
	case *Dir:
		entries, err := os.ReadDir(r.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if v, ok := strings.CutSuffix(e.Name(), artifactExt); ok {
				stored = append(stored, v)
			} else if v, ok := strings.CutSuffix(e.Name(), metadataExt); ok {
				stored = append(stored, v)
			} else if v, ok := strings.CutSuffix(e.Name(), pinExt); ok {
				stored = append(stored, v)
			} else if e.Name() != currentFile {
				t.Errorf("unexpected file %s", e.Name())
			}
		}
	}
	slices.Sort(stored)
	stored = slices.Compact(stored)
	if !slices.Equal(stored, want) {
		t.Errorf("storage holds versions %v, want %v", stored, want)
	}
}

func TestActivateUnknownVersion(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			reg := be.storage(t)(Options{Now: newClock().Now})
			v, err := reg.Publish(ctx, testModel(t, 30, 4, 1))
			if err != nil {
				t.Fatal(err)
			}
			// A publish that died before its metadata leaves no version.
			reg.setHook(func(step string) error {
				if step == stepChunksWritten {
					return errors.New("crash")
				}
				return nil
			})
			if _, err := reg.Publish(ctx, testModel(t, 30, 4, 2)); err == nil {
				t.Fatal("publish with a crash succeeded")
			}
			reg.setHook(nil)
			for _, tc := range []struct{ name, version string }{
				{"never published", "20261123T120501Z-abcdef"},
				{"malformed", "../../etc/passwd"},
				{"empty", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if _, err := reg.Activate(ctx, tc.version); !errors.Is(err, ErrUnknownVersion) {
						t.Errorf("Activate(%q) = %v, want ErrUnknownVersion", tc.version, err)
					}
					if _, err := reg.Load(ctx, tc.version); !errors.Is(err, ErrUnknownVersion) {
						t.Errorf("Load(%q) = %v, want ErrUnknownVersion", tc.version, err)
					}
					if cur, _ := reg.Current(ctx); cur != v.Name() {
						t.Errorf("Current = %q, want %q unchanged", cur, v.Name())
					}
				})
			}
			if _, err := reg.Publish(ctx, nil); err == nil {
				t.Error("Publish(nil) succeeded")
			}
		})
	}
}

// A crash at any step of a publish leaves the old version current, and a
// watching server keeps serving it; the next publish goes through.
func TestCrashDuringPublishKeepsOldModel(t *testing.T) {
	for _, be := range backends {
		for _, step := range []string{stepChunksWritten, stepStaged} {
			t.Run(be.name+"/"+step, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				reg := be.storage(t)(Options{Now: newClock().Now, ChunkSize: 256})
				v1, err := reg.Publish(ctx, testModel(t, 30, 4, 1))
				if err != nil {
					t.Fatal(err)
				}
				src := &countingSource{Source: reg}
				srv := watch(t, src, WatchOptions{PollInterval: 5 * time.Millisecond})
				srv.waitFor(t, v1.Name())

				crash := errors.New("crash")
				reg.setHook(func(s string) error {
					if s == step {
						return crash
					}
					return nil
				})
				if _, err := reg.Publish(ctx, testModel(t, 40, 4, 2)); !errors.Is(err, crash) {
					t.Fatalf("Publish = %v, want the crash", err)
				}
				reg.setHook(nil)
				if cur, _ := reg.Current(ctx); cur != v1.Name() {
					t.Fatalf("Current after crash = %q, want %q", cur, v1.Name())
				}
				list, err := reg.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				wantListed := 1 // a crash before the metadata leaves no version
				if step == stepStaged {
					wantListed = 2 // complete but not current
				}
				if len(list) != wantListed || !list[len(list)-1].Current || list[len(list)-1].Name() != v1.Name() {
					t.Fatalf("List after crash = %v, want %d versions with %s current", names(list), wantListed, v1.Name())
				}
				src.waitPolls(t, 3)
				if got := srv.appliedVersions(); !slices.Equal(got, []string{v1.Name()}) {
					t.Fatalf("server applied %v after the crash, want only %s", got, v1.Name())
				}

				v3, err := reg.Publish(ctx, testModel(t, 50, 4, 3))
				if err != nil {
					t.Fatal(err)
				}
				srv.waitFor(t, v3.Name())
				if got := srv.appliedVersions(); !slices.Equal(got, []string{v1.Name(), v3.Name()}) {
					t.Errorf("server applied %v, want %s then %s", got, v1.Name(), v3.Name())
				}
			})
		}
	}
}

// Chunks of a publish that never wrote its metadata carry a TTL of at most
// OrphanTTL (so Redis expires them); committed chunks have none. The test
// checks the TTLs rather than waiting for a short one to run out, which would
// depend on how busy the machine is.
func TestRedisOrphanChunksExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	const orphanTTL = time.Minute
	reg, err := NewRedis(c, Options{Prefix: prefix, ChunkSize: 256, OrphanTTL: orphanTTL, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	good, err := reg.Publish(ctx, testModel(t, 30, 4, 1))
	if err != nil {
		t.Fatal(err)
	}
	reg.hook = func(step string) error {
		if step == stepChunksWritten {
			return errors.New("crash")
		}
		return nil
	}
	_, err = reg.Publish(ctx, testModel(t, 30, 4, 2))
	reg.hook = nil
	if err == nil {
		t.Fatal("publish with a crash succeeded")
	}
	keys, err := redistest.Keys(ctx, c, reg.base+":v:")
	if err != nil {
		t.Fatal(err)
	}
	var orphans []string
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, good.Name()) {
			if ttl != -1 {
				t.Errorf("committed key %s has TTL %v, want none", k, ttl)
			}
			continue
		}
		orphans = append(orphans, k)
		if ttl <= 0 || ttl > orphanTTL {
			t.Errorf("orphan chunk %s has TTL %v, want one within (0, %v]", k, ttl, orphanTTL)
		}
	}
	if len(orphans) < 2 {
		t.Fatalf("found orphan chunks %v, want the chunks of the crashed publish", orphans)
	}
	// What expiry leaves behind: the orphans gone, the good version intact.
	if err := c.Del(ctx, orphans...).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Load(ctx, good.Name()); err != nil {
		t.Errorf("Load(%s) after orphans expired: %v", good.Name(), err)
	}
}

// The directory's next publish deletes leftovers older than OrphanTTL, but
// not younger ones (they may belong to a publish still running).
func TestDirOrphansRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	d, err := NewDir(t.TempDir(), Options{Now: clk.Now, OrphanTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d.hook = func(step string) error {
		if step == stepChunksWritten {
			return errors.New("crash")
		}
		return nil
	}
	if _, err := d.Publish(ctx, testModel(t, 30, 4, 1)); err == nil {
		t.Fatal("publish with a crash succeeded")
	}
	d.hook = nil
	tmp, err := os.CreateTemp(d.path, tempPrefix+"*")
	if err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	orphans, err := filepath.Glob(filepath.Join(d.path, "*"+artifactExt))
	if err != nil || len(orphans) != 1 {
		t.Fatalf("orphan artifacts = %v, %v; want one", orphans, err)
	}
	orphans = append(orphans, tmp.Name())

	v1, err := d.Publish(ctx, testModel(t, 30, 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range orphans {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("young leftover %s removed: %v", f, err)
		}
	}
	clk.advance(2 * time.Hour)
	v2, err := d.Publish(ctx, testModel(t, 30, 4, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range orphans {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old leftover %s still there: %v", f, err)
		}
	}
	assertStoredVersions(t, d, v1.Name(), v2.Name())
}

// The prune script itself refuses the current version, so a version made
// current between prune's read of Current and its delete survives.
func TestRedisPruneScriptSparesCurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.Client(t)
	reg, err := NewRedis(c, Options{Prefix: redistest.Prefix(t, c), ChunkSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	v, err := reg.Publish(ctx, testModel(t, 30, 4, 1))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.HGet(ctx, reg.metaKey(v.Name()), "chunks").Int()
	if err != nil {
		t.Fatal(err)
	}
	keys := append([]string{reg.currentKey(), reg.versionsKey(), reg.pinsKey(), reg.metaKey(v.Name()), reg.reportKey(v.Name())}, reg.chunkKeys(v.Name(), n)...)
	got, err := pruneScript.Run(ctx, c, keys, v.Name(), time.Now().UnixMilli()).Int()
	if err != nil || got != 0 {
		t.Fatalf("prune script on the current version = %d, %v; want 0", got, err)
	}
	if _, err := reg.Load(ctx, v.Name()); err != nil {
		t.Errorf("current version damaged by the prune script: %v", err)
	}
}

// A new version never takes the name of an existing one, even when the clock
// and the random suffix repeat.
func TestPublishAvoidsNameClash(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
			reg := be.storage(t)(Options{Now: func() time.Time { return at }})
			// The suffix bytes: abcdef for the first publish, abcdef again and
			// then 012345 for the second.
			rnd := bytes.NewReader([]byte{0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45})
			switch r := reg.(type) {
			case *Redis:
				r.random = rnd
			case *Dir:
				r.random = rnd
			}
			v1, err := reg.Publish(ctx, testModel(t, 30, 4, 1))
			if err != nil {
				t.Fatal(err)
			}
			v2, err := reg.Publish(ctx, testModel(t, 40, 4, 2))
			if err != nil {
				t.Fatal(err)
			}
			if v1.Name() != "20261123T120000Z-abcdef" || v2.Name() != "20261123T120000Z-012345" {
				t.Errorf("names %s, %s; want ...-abcdef, ...-012345", v1.Name(), v2.Name())
			}
			for _, tc := range []struct {
				v     Version
				items int
			}{{v1, 30}, {v2, 40}} {
				if m, err := reg.Load(ctx, tc.v.Name()); err != nil || m.NumItems() != tc.items {
					t.Errorf("Load(%s) = %v, %v; want %d items", tc.v.Name(), m, err, tc.items)
				}
			}
		})
	}
}

// A publish slower than OrphanTTL fails at its commit instead of completing a
// version whose chunks have expired. The expiry is simulated by deleting the
// chunks at the stall point, so the test does not race a real clock.
func TestRedisCommitRefusesExpiredChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.Client(t)
	reg, err := NewRedis(c, Options{Prefix: redistest.Prefix(t, c), ChunkSize: 256, OrphanTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reg.hook = func(step string) error {
		if step == stepChunksWritten {
			// The publish stalls here until its chunks have expired.
			keys, err := redistest.Keys(ctx, c, reg.base+":v:")
			if err != nil || len(keys) == 0 {
				t.Errorf("chunk keys %v, %v; want some", keys, err)
				return nil
			}
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	_, err = reg.Publish(ctx, testModel(t, 30, 4, 1))
	if err == nil || !strings.Contains(err.Error(), "orphan TTL") {
		t.Fatalf("Publish = %v, want an error about expired chunks", err)
	}
	if cur, _ := reg.Current(ctx); cur != "" {
		t.Errorf("Current = %q, want none", cur)
	}
	if vs, err := reg.List(ctx); err != nil || len(vs) != 0 {
		t.Errorf("List = %v, %v; want no versions", names(vs), err)
	}
}

// A pinned version survives publishes that push it out of the newest Keep
// until its lease ends; the next publish after that prunes it with its pin.
// The pin is made through one instance and the publishes go through
// another, as a server pins and the trainer publishes. A later lease
// extends the pin, an earlier one does not shorten it. Pinning an unknown
// version is ErrUnknownVersion.
func TestPinnedVersionIsNotPruned(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock()
			open := be.storage(t)
			opts := Options{ChunkSize: 512, Keep: 1, Now: clk.Now}
			trainer := open(opts)
			server, ok := open(opts).(interface {
				Pin(ctx context.Context, version string, until time.Time) error
			})
			if !ok {
				t.Fatalf("%T cannot pin", server)
			}
			pinned, err := trainer.Publish(ctx, testModel(t, 30, 4, 1))
			if err != nil {
				t.Fatal(err)
			}
			end := clk.Now().Add(time.Hour)
			if err := server.Pin(ctx, pinned.Name(), end); err != nil {
				t.Fatal(err)
			}
			if err := server.Pin(ctx, pinned.Name(), end.Add(-30*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := server.Pin(ctx, "20990101T000000Z-000000", end); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("Pin of an unknown version = %v, want ErrUnknownVersion", err)
			}
			var last Version
			for seed := range uint64(3) {
				if last, err = trainer.Publish(ctx, testModel(t, 31+int(seed), 4, 2+seed)); err != nil {
					t.Fatal(err)
				}
			}
			if m, err := trainer.Load(ctx, pinned.Name()); err != nil || m.NumItems() != 30 {
				t.Fatalf("pinned version after 3 newer publishes with keep 1: %v, %v", m, err)
			}
			assertStoredVersions(t, trainer, pinned.Name(), last.Name())

			// Past the earlier lease, within the first: still pinned.
			clk.advance(45 * time.Minute)
			if last, err = trainer.Publish(ctx, testModel(t, 35, 4, 6)); err != nil {
				t.Fatal(err)
			}
			if _, err := trainer.Load(ctx, pinned.Name()); err != nil {
				t.Fatalf("45 min into a 1-h lease (shortened to 30 min by a later Pin): Load = %v, want the version kept", err)
			}
			// A renewal extends the lease.
			if err := server.Pin(ctx, pinned.Name(), clk.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			clk.advance(45 * time.Minute)
			if last, err = trainer.Publish(ctx, testModel(t, 36, 4, 7)); err != nil {
				t.Fatal(err)
			}
			if _, err := trainer.Load(ctx, pinned.Name()); err != nil {
				t.Fatalf("90 min after the first pin, 45 min into a renewed 1-h lease: Load = %v, want the version kept", err)
			}

			clk.advance(2 * time.Hour)
			if last, err = trainer.Publish(ctx, testModel(t, 40, 4, 9)); err != nil {
				t.Fatal(err)
			}
			if _, err := trainer.Load(ctx, pinned.Name()); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("after the lease ended: Load = %v, want ErrUnknownVersion (pruned)", err)
			}
			list, err := trainer.List(ctx)
			if err != nil || len(list) != 1 {
				t.Errorf("List = %v, %v; want only the current version", names(list), err)
			}
			assertStoredVersions(t, trainer, last.Name())
		})
	}
}
