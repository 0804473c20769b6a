// Package content places items the factor model has never seen by what they
// are: a ridge regression, learned by the retraining job, from an item's
// attributes (category, brand, seller, price band, the tokens of its title)
// (and tags: string attributes, genres) to the factor space of the model it
// is trained with. The server gives
// every catalog item the model lacks the vector its attributes predict
// (Map.Vector), so a new item can be recommended to the users it suits and
// found similar to its peers from its first minute; once it has events, the
// next retrain gives it a learned vector instead.
//
// The map travels in the model artifact as the section "content", version
// 1 (Map.Section, FromModel; the layout is in models/README.md).
//
// How it is fitted: every item of the model is one example; its binary
// feature vector x (category, brand, seller, price band: 1 each; tags and
// title tokens: 1/√(their number) each) predicts its factors y as
// μ + Σ_f x_f·w_f, where μ is the mean item vector; W minimises
// Σ‖y − μ − xᵀW‖² + λ‖W‖², solved by conjugate gradients on the normal
// equations (the operator is sparse: O(nnz·F) per step).
package content

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/recsys-dev/recsys/internal/mf"
)

// The artifact section that carries a Map.
const (
	SectionKind    = "content"
	SectionVersion = 1
)

// Limits of a map, enforced when it is fitted or read.
const (
	MaxFeatures     = 200_000
	MaxFeatureBytes = 512
	// MaxTitleTokens is how many distinct tokens of a title count.
	MaxTitleTokens = 32
)

// ErrCorrupt marks a "content" section that cannot be read.
var ErrCorrupt = errors.New("corrupt content section")

// ErrNoContent means the model carries no "content" section.
var ErrNoContent = errors.New("the model has no content map")

// Tokens splits a title into lower-case words of letters and digits,
// at least 2 runes long, distinct, in order of first appearance, at most
// MaxTitleTokens. "Toy Story (1995)" gives [toy story 1995].
func Tokens(title string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(title), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len([]rune(w)) < 2 || slices.Contains(out, w) {
			continue
		}
		out = append(out, w)
		if len(out) == MaxTitleTokens {
			break
		}
	}
	return out
}

// PriceBand is the band of a price: ⌊2·log₂ price⌋ (bands of ×√2), or
// false for an unknown price (≤ 0).
func PriceBand(price float64) (int, bool) {
	if !(price > 0) || math.IsInf(price, 0) {
		return 0, false
	}
	return int(math.Floor(2 * math.Log2(price))), true
}

// Item is what the map reads of an item: the catalog's description
// (catalog.Item has these fields; this package does not import it, so
// evaluation and training use it without a Redis client).
type Item struct {
	Category, Brand, Seller, Title string
	Price                          float64
	// Tags are further string values (the catalog's string attributes as
	// name=value, a film's genres), at most MaxTags of them count.
	Tags []string
}

// MaxTags is how many of an item's tags count.
const MaxTags = 32

// Feature is one attribute value of an item with its weight in x.
type Feature struct {
	Name   string
	Weight float32
}

// Features returns the features of it: "c:" category, "b:" brand, "s:"
// seller, "p:" price band (weight 1 each), "a:" tags and "t:" title tokens
// (weight 1/√n each, n the item's number of tags or tokens). A name longer
// than MaxFeatureBytes is left out.
func Features(it Item) []Feature {
	var fs []Feature
	add := func(prefix, v string, w float32) {
		if v != "" && len(prefix)+len(v) <= MaxFeatureBytes {
			fs = append(fs, Feature{Name: prefix + v, Weight: w})
		}
	}
	add("c:", it.Category, 1)
	add("b:", it.Brand, 1)
	add("s:", it.Seller, 1)
	if b, ok := PriceBand(it.Price); ok {
		add("p:", strconv.Itoa(b), 1)
	}
	if n := min(len(it.Tags), MaxTags); n > 0 {
		w := float32(1 / math.Sqrt(float64(n)))
		for _, t := range it.Tags[:n] {
			add("a:", t, w)
		}
	}
	if toks := Tokens(it.Title); len(toks) > 0 {
		w := float32(1 / math.Sqrt(float64(len(toks))))
		for _, t := range toks {
			add("t:", t, w)
		}
	}
	return fs
}

// Map turns item attributes into factor vectors. It is immutable.
type Map struct {
	f      int
	mean   []float32
	names  []string // sorted
	index  map[string]int32
	weight []float32 // len(names) × f
}

// Factors is the length of the vectors the map makes.
func (m *Map) Factors() int { return m.f }

// Len is the number of features the map knows.
func (m *Map) Len() int { return len(m.names) }

// Vector writes it's predicted factors into dst (Factors long) and reports
// whether any of its features is known to the map; without one dst holds
// the mean item and ok is false (the item is not placed).
func (m *Map) Vector(it Item, dst []float32) (ok bool) {
	copy(dst, m.mean)
	for _, ft := range Features(it) {
		i, known := m.index[ft.Name]
		if !known {
			continue
		}
		ok = true
		for d, w := range m.weight[int(i)*m.f : int(i+1)*m.f] {
			dst[d] += ft.Weight * w
		}
	}
	return ok
}

// Section encodes m as the artifact section "content" version 1.
func (m *Map) Section() mf.Section {
	b := make([]byte, 0, 8+4*m.f+len(m.names)*(2+4*m.f+16))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.f))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.names)))
	for _, v := range m.mean {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	for i, n := range m.names {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
		for _, v := range m.weight[i*m.f : (i+1)*m.f] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return mf.Section{Kind: SectionKind, Version: SectionVersion, Data: b}
}

// FromModel reads the content map of model: ErrNoContent without a
// "content" section, an error wrapping ErrCorrupt for one that is damaged,
// of another version, or of another number of factors.
func FromModel(model *mf.Model) (*Map, error) {
	sec, ok := model.Section(SectionKind)
	if !ok {
		return nil, ErrNoContent
	}
	return Decode(sec, model.Factors())
}

// Decode reads a "content" section for a model of f factors.
func Decode(sec mf.Section, f int) (*Map, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if sec.Version != SectionVersion {
		return nil, bad("version %d, this server reads %d", sec.Version, SectionVersion)
	}
	b := sec.Data
	if len(b) < 8 {
		return nil, bad("truncated")
	}
	gotF, n := int(binary.LittleEndian.Uint32(b)), int64(binary.LittleEndian.Uint32(b[4:]))
	b = b[8:]
	if gotF != f {
		return nil, bad("%d factors, the model has %d", gotF, f)
	}
	if n > MaxFeatures {
		return nil, bad("%d features, at most %d", n, MaxFeatures)
	}
	// Every feature needs at least its length, one byte and its weights.
	if int64(len(b)) < 4*int64(f)+n*(3+4*int64(f)) {
		return nil, bad("truncated")
	}
	floats := func(dst []float32) error {
		for i := range dst {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return bad("value %v", v)
			}
			dst[i] = v
			b = b[4:]
		}
		return nil
	}
	m := &Map{f: f, mean: make([]float32, f), names: make([]string, n), index: make(map[string]int32, n), weight: make([]float32, int(n)*f)}
	if err := floats(m.mean); err != nil {
		return nil, err
	}
	for i := range m.names {
		if len(b) < 2 {
			return nil, bad("truncated")
		}
		l := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if l == 0 || l > MaxFeatureBytes || len(b) < l+4*f {
			return nil, bad("feature %d: length %d", i, l)
		}
		name := string(b[:l])
		b = b[l:]
		if i > 0 && m.names[i-1] >= name {
			return nil, bad("feature %q repeated or out of order", name)
		}
		m.names[i], m.index[name] = name, int32(i)
		if err := floats(m.weight[i*f : (i+1)*f]); err != nil {
			return nil, err
		}
	}
	if len(b) != 0 {
		return nil, bad("%d bytes after the last feature", len(b))
	}
	return m, nil
}
