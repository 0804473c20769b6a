package mf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"
)

// artifactBytes encodes m.
func artifactBytes(t testing.TB, m *Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// claimingArtifact is a well-formed artifact start whose header and size
// fields claim n items of f factors, followed by the first ids only: what a
// damaged or hostile file could look like.
func claimingArtifact(t testing.TB, n, f uint32, ids int) []byte {
	t.Helper()
	hdr, err := json.Marshal(Info{Version: "v", Items: int64(n), Hyper: Hyperparameters{Factors: int(f), Regularization: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(Magic)
	b = binary.LittleEndian.AppendUint32(b, FormatVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = binary.LittleEndian.AppendUint32(b, f)
	for i := range ids {
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = append(b, byte('a'+i%26))
	}
	return b
}

// FuzzRead: Read never panics, and a model it accepts survives Write and
// Read unchanged (and Write is canonical: encoding it twice gives the same
// bytes).
func FuzzRead(f *testing.F) {
	for i, shape := range []struct{ n, f int }{{1, 1}, {3, 2}, {25, 4}, {7, 16}} {
		good := artifactBytes(f, randomModel(f, shape.n, shape.f, uint64(i+1)))
		f.Add(good)
		f.Add(good[:len(good)/2])                                  // truncated
		f.Add(append(bytes.Clone(good), 0))                        // trailing byte
		f.Add(append(bytes.Clone(good[:len(good)-4]), 0, 0, 0, 0)) // zero checksum
		flipped := bytes.Clone(good)
		flipped[len(flipped)-8] ^= 0x40 // a factor bit
		f.Add(flipped)
	}
	withSections := artifactBytes(f, sectioned(f, randomModel(f, 5, 3, 9)))
	f.Add(withSections)
	f.Add(withSections[:len(withSections)-7]) // truncated inside a section
	f.Add(formatOne(f, randomModel(f, 4, 2, 3)))
	f.Add([]byte{})
	f.Add([]byte(Magic))
	f.Add(claimingArtifact(f, MaxItems, MaxFactors, 0))
	f.Add(claimingArtifact(f, 3, 2, 3))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Read(bytes.NewReader(data))
		if err != nil {
			if m != nil {
				t.Fatalf("Read returned a model and an error: %v", err)
			}
			return
		}
		enc := artifactBytes(t, m)
		back, err := Read(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("Read of Write of an accepted model: %v", err)
		}
		equalModels(t, back, m)
		if again := artifactBytes(t, back); !bytes.Equal(again, enc) {
			t.Fatalf("Write is not canonical: %d then %d bytes", len(enc), len(again))
		}
	})
}

// equalModels compares everything an artifact carries, factors bit for bit.
func equalModels(t *testing.T, got, want *Model) {
	t.Helper()
	gi, wi := got.Info(), want.Info()
	if !gi.TrainedAt.Equal(wi.TrainedAt) {
		t.Errorf("trained_at: got %v, want %v", gi.TrainedAt, wi.TrainedAt)
	}
	gi.TrainedAt, wi.TrainedAt = time.Time{}, time.Time{}
	gj, _ := json.Marshal(gi)
	wj, _ := json.Marshal(wi)
	if !bytes.Equal(gj, wj) {
		t.Errorf("info:\n got %s\nwant %s", gj, wj)
	}
	if got.NumItems() != want.NumItems() || got.Factors() != want.Factors() {
		t.Fatalf("shape: got %d×%d, want %d×%d", got.NumItems(), got.Factors(), want.NumItems(), want.Factors())
	}
	for i := int32(0); i < int32(want.NumItems()); i++ {
		if got.ItemID(i) != want.ItemID(i) {
			t.Fatalf("id %d: got %q, want %q", i, got.ItemID(i), want.ItemID(i))
		}
	}
	for i, v := range want.Matrix() {
		if math.Float32bits(got.Matrix()[i]) != math.Float32bits(v) {
			t.Fatalf("factor %d: got %v, want %v", i, got.Matrix()[i], v)
		}
	}
	gs, ws := got.Sections(), want.Sections()
	if len(gs) != len(ws) {
		t.Fatalf("sections: got %d, want %d", len(gs), len(ws))
	}
	for i := range ws {
		if gs[i].Kind != ws[i].Kind || gs[i].Version != ws[i].Version || !bytes.Equal(gs[i].Data, ws[i].Data) {
			t.Fatalf("section %d: got %q v%d (%d bytes), want %q v%d (%d bytes)",
				i, gs[i].Kind, gs[i].Version, len(gs[i].Data), ws[i].Kind, ws[i].Version, len(ws[i].Data))
		}
	}
}

// TestReadAllocationFollowsData: a header may claim up to MaxItems ×
// MaxFactors (200 GB of factors); Read must not believe it before the data
// is there. The files below hold a complete id table and nothing else, so
// Read fails in the factors, having allocated in proportion to what it read.
func TestReadAllocationFollowsData(t *testing.T) {
	for _, tc := range []struct {
		name string
		n, f uint32
		ids  int
	}{
		{"max items, no ids", MaxItems, MaxFactors, 0},
		{"100k ids of 1024 factors", 100_000, MaxFactors, 100_000},
		{"1k ids of 1024 factors", 1000, MaxFactors, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := claimingArtifact(t, tc.n, tc.f, tc.ids)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			m, err := Read(bytes.NewReader(data))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) || m != nil {
				t.Fatalf("got model %v, err %v; want ErrCorrupt", m != nil, err)
			}
			// What Read may trust a header with (idsUpFront strings,
			// factorsUpFront floats), its buffers, and a small multiple of the
			// input.
			const slack = idsUpFront*16 + factorsUpFront*4 + 1<<20
			if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(slack+64*len(data)); got > limit {
				t.Errorf("Read allocated %d bytes for a %d-byte file, want at most %d", got, len(data), limit)
			}
		})
	}
}

// BenchmarkRead decodes artifacts of 64 factors. The largest is past
// factorsUpFront, so its B/op includes growing the factor table by doubling.
func BenchmarkRead(b *testing.B) {
	for _, n := range []int{10_000, 200_000, 1_000_000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			data := artifactBytes(b, randomModel(b, n, 64, 1))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Read(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
