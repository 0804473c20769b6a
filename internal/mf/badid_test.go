package mf

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
)

// spliceID replaces the id table entry of id in artifact b with repl and
// fixes the checksum: an artifact written before the id rule was enforced.
func spliceID(t *testing.T, b []byte, id, repl string) []byte {
	t.Helper()
	entry := binary.LittleEndian.AppendUint32(nil, uint32(len(id)))
	entry = append(entry, id...)
	if bytes.Count(b, entry) != 1 {
		t.Fatalf("id table entry of %q not found once", id)
	}
	with := binary.LittleEndian.AppendUint32(nil, uint32(len(repl)))
	with = append(with, repl...)
	out := bytes.Replace(b[:len(b)-4], entry, with, 1)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// TestReadDropsBadIDs: an artifact holding ids that break the id rule
// still loads (a restarted server must come up with a model), without those
// items and with every other item's factors intact.
func TestReadDropsBadIDs(t *testing.T) {
	m := randomModel(t, 6, 3, 1)
	m, err := m.WithSections(Section{Kind: "neighbors", Version: 1, Data: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	b := spliceID(t, buf.Bytes(), "item-1", "item\xff")
	b = spliceID(t, b, "item-4", strings.Repeat("x", 300)) // trainable before, never queryable

	got, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := BadIDs{Items: 2, Sections: []string{"neighbors"}}
	if d := got.DroppedIDs(); d.Items != want.Items || !slices.Equal(d.Sections, want.Sections) {
		t.Errorf("DroppedIDs = %+v, want %+v", d, want)
	}
	if got.NumItems() != 4 || got.Info().Items != 4 {
		t.Fatalf("%d items (info %d), want 4", got.NumItems(), got.Info().Items)
	}
	if _, ok := got.Section("neighbors"); ok {
		t.Error("a section that may index items survived the dropped items")
	}
	for _, id := range []string{"item-0", "item-2", "item-3", "item-5"} {
		i, ok := got.Index(id)
		j, _ := m.Index(id)
		if !ok || !slices.Equal(got.Vector(i), m.Vector(j)) {
			t.Errorf("item %s: found %v, factors %v, want %v", id, ok, got.Vector(i), m.Vector(j))
		}
	}
	if d := m.DroppedIDs(); d.Items != 0 {
		t.Errorf("a model from New reports %+v dropped", d)
	}
}

func TestReadAllIDsBadIsAnError(t *testing.T) {
	m := randomModel(t, 1, 2, 1)
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	_, err := Read(bytes.NewReader(spliceID(t, buf.Bytes(), "item-0", "item\xff")))
	if err == nil || !strings.Contains(err.Error(), "bad ids") {
		t.Fatalf("Read = %v, want an error saying items were dropped", err)
	}
}
