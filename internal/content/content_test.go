package content

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
)

func TestTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Toy Story (1995)", []string{"toy", "story", "1995"}},
		{"  ", nil},
		{"A b-C dd dd Émile", []string{"dd", "émile"}},
	} {
		if got := Tokens(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// planted builds a model whose items' vectors are their brand's direction
// plus their category's, and the catalog that describes them.
func planted(t *testing.T) (*mf.Model, map[string]Item) {
	t.Helper()
	const f = 4
	var ids []string
	var factors []float32
	cat := map[string]Item{}
	for i := range 40 {
		id := "i" + strconv.Itoa(i)
		brand, category := i%2, (i/2)%2
		v := make([]float32, f)
		v[brand] = 1
		v[2+category] = 0.5
		ids = append(ids, id)
		factors = append(factors, v...)
		cat[id] = Item{Brand: "brand" + strconv.Itoa(brand), Category: "cat" + strconv.Itoa(category),
			Title: "thing number " + strconv.Itoa(i)}
	}
	m, err := mf.New(mf.Info{Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 1}}, ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	return m, cat
}

func TestFitPlacesANewItemByItsAttributes(t *testing.T) {
	m, cat := planted(t)
	mp, err := Fit(context.Background(), m, func(id string) (Item, bool) { it, ok := cat[id]; return it, ok }, Options{Lambda: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, m.Factors())
	if !mp.Vector(Item{Brand: "brand1", Category: "cat0", Title: "a new thing"}, got) {
		t.Fatal("a new item of a known brand was not placed")
	}
	want := []float32{0, 1, 0.5, 0}
	for d := range want {
		if math.Abs(float64(got[d]-want[d])) > 0.15 {
			t.Fatalf("vector of a brand1/cat0 item = %v, want about %v", got, want)
		}
	}
	if mp.Vector(Item{Brand: "nobody"}, make([]float32, m.Factors())) {
		t.Error("an item without a known feature was placed")
	}

	// The section round trip gives the same map.
	back, err := Decode(mp.Section(), m.Factors())
	if err != nil {
		t.Fatal(err)
	}
	again := make([]float32, m.Factors())
	back.Vector(Item{Brand: "brand1", Category: "cat0", Title: "a new thing"}, again)
	if !slices.Equal(again, got) {
		t.Errorf("decoded map gives %v, the fitted one %v", again, got)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	m, cat := planted(t)
	mp, err := Fit(context.Background(), m, func(id string) (Item, bool) { it, ok := cat[id]; return it, ok }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := mp.Section()
	for name, mutate := range map[string]func(s *mf.Section){
		"version":   func(s *mf.Section) { s.Version = 2 },
		"truncated": func(s *mf.Section) { s.Data = s.Data[:len(s.Data)-1] },
		"trailing":  func(s *mf.Section) { s.Data = append(s.Data, 0) },
		"factors":   func(s *mf.Section) { s.Data[0] = 9 },
		"nan":       func(s *mf.Section) { copy(s.Data[8:], []byte{0, 0, 0xc0, 0x7f}) },
	} {
		s := mf.Section{Kind: good.Kind, Version: good.Version, Data: slices.Clone(good.Data)}
		mutate(&s)
		if _, err := Decode(s, m.Factors()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := FromModel(m); !errors.Is(err, ErrNoContent) {
		t.Errorf("model without the section: err = %v, want ErrNoContent", err)
	}
}
