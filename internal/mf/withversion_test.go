package mf

import (
	"bytes"
	"testing"
)

func TestWithVersion(t *testing.T) {
	m := randomModel(t, 30, 4, 3)
	got := m.WithVersion("v2")
	if got.Version() != "v2" {
		t.Errorf("copy version = %q, want v2", got.Version())
	}
	if m.Version() != "v-test" {
		t.Errorf("original version = %q, want v-test (must be unchanged)", m.Version())
	}
	if &got.Matrix()[0] != &m.Matrix()[0] {
		t.Error("copy does not share the factor block")
	}
	// The copy is a complete model: it round-trips under its new version.
	var buf bytes.Buffer
	if err := Write(&buf, got); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if back.Version() != "v2" || back.NumItems() != m.NumItems() {
		t.Errorf("read back version %q with %d items, want v2 with %d", back.Version(), back.NumItems(), m.NumItems())
	}
}
