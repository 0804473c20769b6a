package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind is one kind of call the generator makes.
type Kind int

// The kinds of calls.
const (
	Recommend Kind = iota // RecommendationService.Recommend for one user
	Events                // EventService.RecordEvents, a batch for one user
	Similar               // RecommendationService.SimilarItems for one item
	numKinds
)

// Kinds lists every kind, in report order.
func Kinds() []Kind { return []Kind{Recommend, Events, Similar} }

func (k Kind) String() string {
	switch k {
	case Recommend:
		return "recommend"
	case Events:
		return "events"
	case Similar:
		return "similar"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Mix is the share of each kind of call (weights, normalised on use).
type Mix [numKinds]float64

// DefaultMix is 70% recommend, 25% events, 5% similar.
func DefaultMix() Mix { return Mix{Recommend: 70, Events: 25, Similar: 5} }

// ParseMix reads "recommend=70,events=25,similar=5". Kinds left out get 0;
// at least one weight must be positive.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[Kind]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: %q is not kind=weight", s, part)
		}
		k, err := parseKind(strings.TrimSpace(name))
		if err != nil {
			return Mix{}, fmt.Errorf("mix %q: %w", s, err)
		}
		if seen[k] {
			return Mix{}, fmt.Errorf("mix %q: %s given twice", s, k)
		}
		seen[k] = true
		w, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
			return Mix{}, fmt.Errorf("mix %q: weight of %s must be a finite number >= 0, got %q", s, k, val)
		}
		m[k] = w
	}
	if m.total() <= 0 {
		return Mix{}, fmt.Errorf("mix %q: no positive weight", s)
	}
	return m, nil
}

func parseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if strings.EqualFold(s, k.String()) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q: want recommend, events or similar", s)
}

func (m Mix) total() float64 {
	var t float64
	for _, w := range m {
		t += w
	}
	return t
}

// pick maps u in [0, 1) to a kind with probability proportional to its weight.
func (m Mix) pick(u float64) Kind {
	x := u * m.total()
	last := Recommend
	for _, k := range Kinds() {
		if m[k] <= 0 {
			continue
		}
		if x < m[k] {
			return k
		}
		x -= m[k]
		last = k
	}
	return last // rounding at the very top
}

func (m Mix) String() string {
	var parts []string
	for _, k := range Kinds() {
		parts = append(parts, k.String()+"="+strconv.FormatFloat(m[k], 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}
