package mf_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
)

func TestWithExtraItems(t *testing.T) {
	m, err := mf.New(mf.Info{Hyper: mf.Hyperparameters{Factors: 2, Regularization: 0.1, Alpha: 1}},
		[]string{"a", "b"}, []float32{1, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	x, err := m.WithExtraItems([]string{"n"}, []float32{3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if x.NumItems() != 3 || x.BaseItems() != 2 || m.NumItems() != 2 || m.BaseItems() != 2 {
		t.Fatalf("items %d base %d (the original: %d, %d)", x.NumItems(), x.BaseItems(), m.NumItems(), m.BaseItems())
	}
	if r, ok := x.Index("n"); !ok || r != 2 || x.Norm(r) != 5 || !slices.Equal(x.Vector(r), []float32{3, 4}) {
		t.Errorf("row of n: %d %v", r, ok)
	}
	if !slices.Equal(x.Gram(), m.Gram()) {
		t.Errorf("Gram %v, want the trained rows' %v", x.Gram(), m.Gram())
	}
	// Adding again replaces the extra rows.
	y, err := x.WithExtraItems([]string{"p"}, []float32{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := y.Index("n"); ok || y.NumItems() != 3 {
		t.Errorf("extra rows kept: %v", y.ItemIDs())
	}
	for name, c := range map[string]struct {
		ids []string
		v   []float32
	}{
		"known id": {[]string{"a"}, []float32{1, 1}},
		"twice":    {[]string{"n", "n"}, []float32{1, 1, 1, 1}},
		"short":    {[]string{"n"}, []float32{1}},
		"empty id": {[]string{""}, []float32{1, 1}},
	} {
		if _, err := m.WithExtraItems(c.ids, c.v); !errors.Is(err, mf.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
