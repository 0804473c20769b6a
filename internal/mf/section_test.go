package mf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// sectioned returns m with two sections, one of them empty.
func sectioned(t testing.TB, m *Model) *Model {
	t.Helper()
	s, err := m.WithSections(
		Section{Kind: "ivf", Version: 3, Data: []byte("partitions")},
		Section{Kind: "blend", Version: 1},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// formatOne encodes m as a format-1 artifact (no section list), as the
// builds before sections wrote it.
func formatOne(t testing.TB, m *Model) []byte {
	t.Helper()
	if len(m.Sections()) != 0 {
		t.Fatal("format 1 has no sections")
	}
	b := artifactBytes(t, m)
	body := bytes.Clone(b[:len(b)-8]) // drop the empty section count and the checksum
	binary.LittleEndian.PutUint32(body[len(Magic):], formatNoSections)
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
}

func TestSectionsRoundTrip(t *testing.T) {
	m := sectioned(t, randomModel(t, 6, 4, 1))
	got, err := Read(bytes.NewReader(artifactBytes(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	equalModels(t, got, m)
	if kinds := []string{got.Sections()[0].Kind, got.Sections()[1].Kind}; kinds[0] != "blend" || kinds[1] != "ivf" {
		t.Errorf("sections not sorted by kind: %v", kinds)
	}
	s, ok := got.Section("ivf")
	if !ok || s.Version != 3 || string(s.Data) != "partitions" {
		t.Errorf(`Section("ivf") = %+v, %v`, s, ok)
	}
	if _, ok := got.Section("content"); ok {
		t.Error(`Section("content") found in a model without one`)
	}
}

func TestFormatOneStillLoads(t *testing.T) {
	m := randomModel(t, 5, 3, 2)
	got, err := Read(bytes.NewReader(formatOne(t, m)))
	if err != nil {
		t.Fatalf("format-1 artifact: %v", err)
	}
	equalModels(t, got, m)
	if len(got.Sections()) != 0 {
		t.Errorf("format-1 artifact has %d sections", len(got.Sections()))
	}
}

func TestWithSections(t *testing.T) {
	base := randomModel(t, 3, 2, 3)
	m := sectioned(t, base)
	if len(base.Sections()) != 0 {
		t.Fatal("WithSections changed the model it was called on")
	}
	r, err := m.WithSections(Section{Kind: "ivf", Version: 4, Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Section("ivf"); s.Version != 4 || len(r.Sections()) != 2 {
		t.Errorf("replacing ivf: got %+v among %d sections", s, len(r.Sections()))
	}
	if s, _ := m.Section("ivf"); s.Version != 3 {
		t.Error("replacing a section changed the original model")
	}
	if &r.Matrix()[0] != &base.Matrix()[0] {
		t.Error("WithSections copied the factors")
	}

	for _, tc := range []struct {
		name string
		s    []Section
	}{
		{"empty kind", []Section{{Kind: ""}}},
		{"upper case", []Section{{Kind: "IVF"}}},
		{"space", []Section{{Kind: "my index"}}},
		{"too long", []Section{{Kind: strings.Repeat("k", MaxSectionKind+1)}}},
		{"too many", manySections(MaxSections + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := base.WithSections(tc.s...); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func manySections(n int) []Section {
	s := make([]Section, n)
	for i := range s {
		s[i] = Section{Kind: "s" + strings.Repeat("a", i%MaxSectionKind/2) + string(rune('a'+i%26)) + string(rune('a'+i/26))}
	}
	return s
}

func TestReadRejectsDamagedSections(t *testing.T) {
	good := artifactBytes(t, sectioned(t, randomModel(t, 2, 2, 4)))
	// The section list starts right after the factors: find "blend"'s
	// kind-length field (sections are written sorted, blend first).
	at := bytes.Index(good, []byte("blend")) - 4
	resum := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
	}
	for _, tc := range []struct {
		name   string
		mutate func(b []byte)
	}{
		{"section count beyond the limit", func(b []byte) { binary.LittleEndian.PutUint32(b[at-4:], MaxSections+1) }},
		{"zero-length kind", func(b []byte) { binary.LittleEndian.PutUint32(b[at:], 0) }},
		{"payload longer than the file", func(b []byte) { binary.LittleEndian.PutUint64(b[at+4+5+4:], 1<<20) }},
		{"payload beyond the limit", func(b []byte) { binary.LittleEndian.PutUint64(b[at+4+5+4:], MaxSectionBytes+1) }},
		{"bad kind character", func(b []byte) { b[at+4] = 'B' }},
		{"kinds out of order", func(b []byte) { copy(b[bytes.Index(b, []byte("ivf")):], "blend"[:3]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.mutate(b)
			if _, err := Read(bytes.NewReader(resum(b))); !errors.Is(err, ErrCorrupt) {
				t.Errorf("got %v, want ErrCorrupt", err)
			}
		})
	}
}
