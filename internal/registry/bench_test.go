package registry

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// benchRegistries opens each backend for a benchmark, keeping 2 versions so
// the Redis server's memory stays bounded while Publish runs b.N times.
func benchRegistries(b *testing.B) map[string]func() testRegistry {
	return map[string]func() testRegistry{
		"redis": func() testRegistry {
			c := redistest.Client(b)
			r, err := NewRedis(c, Options{Prefix: redistest.Prefix(b, c), Keep: 2})
			if err != nil {
				b.Fatal(err)
			}
			return r
		},
		"dir": func() testRegistry {
			d, err := NewDir(b.TempDir(), Options{Keep: 2})
			if err != nil {
				b.Fatal(err)
			}
			return d
		},
	}
}

var benchSizes = []struct{ items, factors int }{{10_000, 64}, {100_000, 64}}

func artifactSize(b *testing.B, m *mf.Model) int64 {
	var buf bytes.Buffer
	if err := mf.Write(&buf, m); err != nil {
		b.Fatal(err)
	}
	return int64(buf.Len())
}

// BenchmarkPublish measures Publish: encode, write (chunks or file + fsync),
// metadata, flip, prune.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		m := testModel(b, sz.items, sz.factors, 1)
		size := artifactSize(b, m)
		for _, name := range []string{"redis", "dir"} {
			b.Run(name+"/items="+strconv.Itoa(sz.items), func(b *testing.B) {
				reg := benchRegistries(b)[name]()
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := reg.Publish(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLoad measures what a watcher does off the request path: read and
// verify the artifact and build the model (mf.Read, including the Gram
// matrix). "memory" is mf.Read from a byte slice: the cost of decoding and
// building alone, for comparison.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		m := testModel(b, sz.items, sz.factors, 1)
		var buf bytes.Buffer
		if err := mf.Write(&buf, m); err != nil {
			b.Fatal(err)
		}
		b.Run("memory/items="+strconv.Itoa(sz.items), func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mf.Read(bytes.NewReader(buf.Bytes())); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, name := range []string{"redis", "dir"} {
			b.Run(name+"/items="+strconv.Itoa(sz.items), func(b *testing.B) {
				reg := benchRegistries(b)[name]()
				v, err := reg.Publish(ctx, m)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(v.Size)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := reg.Load(ctx, v.Name()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
