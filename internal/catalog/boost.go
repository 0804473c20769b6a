package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Boost and bury rules are shop data that lift or lower the scores of
// matching items (boosts.go in recommend applies them). They are one JSON
// document beside the other rules, replaced as a whole:
//
//	<prefix>:{catalog}:boosts      STRING  JSON of BoostSet; at most MaxBoostRules rules
//	<prefix>:{catalog}:attributes  HASH    declared custom attribute -> type (1 string,
//	                                       2 number); at most MaxDeclarations
//
// Both changes bump the rules version, so every RulesCache picks them up.

// Limits of the boost rules.
const (
	MaxBoostRules        = 1000
	MaxRuleNameBytes     = 64
	MaxRuleAdd           = 1000
	MaxRuleMultiply      = 10
	MaxAdjustmentLimit   = 1000
	DefaultMaxAdjustment = 1.0
)

// Effect is how a boost rule changes a score.
type Effect uint8

// The effects.
const (
	EffectAdd      Effect = iota + 1 // adds Value
	EffectMultiply                   // multiplies a positive score by Value
)

// RuleSegment restricts a rule to users of a segment; the zero value is
// every user. Lifecycle numbers are profile.Lifecycle's (0: any).
type RuleSegment struct {
	Lifecycle   int      `json:"lifecycle,omitempty"`
	MinPerMonth float64  `json:"min_purchases_per_30d,omitempty"`
	MinSpend    float64  `json:"min_spend,omitempty"`
	MaxSpend    *float64 `json:"max_spend,omitempty"`
}

// BoostRule lifts or lowers matching items.
type BoostRule struct {
	Name string `json:"name"`
	// Attribute is what the rule matches ("" every item): a built-in name
	// (BuiltinType) or a declared attribute.
	Attribute string `json:"attribute,omitempty"`
	// Equals is the value of a string attribute that matches.
	Equals string `json:"equals,omitempty"`
	// Min and Max bound the values of a number attribute that match,
	// inclusive; nil is open.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Segment: only for users of this segment; nil every user (and
	// answers without a user).
	Segment *RuleSegment `json:"segment,omitempty"`
	Effect  Effect       `json:"effect"`
	Value   float64      `json:"value"`
}

// BoostSet is the shop's whole set of boost rules.
type BoostSet struct {
	Rules []BoostRule `json:"rules"`
	// MaxAdjustment bounds an item's total adjustment (> 0).
	MaxAdjustment float64 `json:"max_adjustment"`
}

// ErrInvalidRules is wrapped by every validation error of boost rules.
var ErrInvalidRules = errors.New("invalid boost rules")

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ValidateBoosts checks a rule set against the declared attributes and
// fills in the default MaxAdjustment. Errors name the field, as
// rules[i].field.
func ValidateBoosts(set *BoostSet, decl map[string]AttrType) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRules, fmt.Sprintf(format, a...))
	}
	if len(set.Rules) > MaxBoostRules {
		return bad("rules: %d rules, at most %d", len(set.Rules), MaxBoostRules)
	}
	switch {
	case set.MaxAdjustment == 0:
		set.MaxAdjustment = DefaultMaxAdjustment
	case !(set.MaxAdjustment > 0 && set.MaxAdjustment <= MaxAdjustmentLimit):
		return bad("max_adjustment must be within (0, %d], got %v", MaxAdjustmentLimit, set.MaxAdjustment)
	}
	names := make(map[string]struct{}, len(set.Rules))
	var logUp, logDown float64 // the worst product of the multipliers
	for i, r := range set.Rules {
		f := func(field string) string { return fmt.Sprintf("rules[%d].%s", i, field) }
		if r.Name == "" || len(r.Name) > MaxRuleNameBytes || !utf8.ValidString(r.Name) {
			return bad("%s must be 1..%d bytes of UTF-8", f("name"), MaxRuleNameBytes)
		}
		if _, dup := names[r.Name]; dup {
			return bad("%s %q is used twice", f("name"), r.Name)
		}
		names[r.Name] = struct{}{}
		t, builtin := BuiltinType(r.Attribute)
		if !builtin && r.Attribute != "" {
			var ok bool
			if t, ok = decl[r.Attribute]; !ok {
				return bad("%s %q is neither built in nor declared", f("attribute"), r.Attribute)
			}
		}
		switch {
		case r.Attribute == "":
			if r.Equals != "" || r.Min != nil || r.Max != nil {
				return bad("%s: equals/min/max need an attribute", f("attribute"))
			}
		case t == AttrString:
			if r.Min != nil || r.Max != nil {
				return bad("%s: %q is a string attribute: use equals, not min/max", f("min"), r.Attribute)
			}
			if r.Equals == "" || len(r.Equals) > MaxNameBytes || !utf8.ValidString(r.Equals) {
				return bad("%s must be 1..%d bytes of UTF-8 for string attribute %q", f("equals"), MaxNameBytes, r.Attribute)
			}
			if r.Attribute == AttrPromotion && r.Equals != "true" && r.Equals != "false" {
				return bad("%s must be \"true\" or \"false\" for promotion", f("equals"))
			}
		default:
			if r.Equals != "" {
				return bad("%s: %q is a number attribute: use min/max, not equals", f("equals"), r.Attribute)
			}
			if r.Min == nil && r.Max == nil {
				return bad("%s: number attribute %q needs min or max", f("min"), r.Attribute)
			}
			if (r.Min != nil && !finite(*r.Min)) || (r.Max != nil && !finite(*r.Max)) {
				return bad("%s: min and max must be finite", f("min"))
			}
			if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
				return bad("%s %v is above max %v", f("min"), *r.Min, *r.Max)
			}
		}
		if s := r.Segment; s != nil {
			switch {
			case s.Lifecycle < 0 || s.Lifecycle > 3:
				return bad("%s: unknown lifecycle %d", f("segment.lifecycle"), s.Lifecycle)
			case !(s.MinPerMonth >= 0) || !finite(s.MinPerMonth):
				return bad("%s must be a finite number >= 0", f("segment.min_purchases_per_30d"))
			case !(s.MinSpend >= 0) || !finite(s.MinSpend):
				return bad("%s must be a finite number >= 0", f("segment.min_spend"))
			case s.MaxSpend != nil && (!finite(*s.MaxSpend) || *s.MaxSpend < s.MinSpend):
				return bad("%s must be finite and >= min_spend", f("segment.max_spend"))
			}
		}
		switch r.Effect {
		case EffectAdd:
			if !finite(r.Value) || math.Abs(r.Value) > MaxRuleAdd {
				return bad("%s must be finite and within ±%d, got %v", f("add"), MaxRuleAdd, r.Value)
			}
		case EffectMultiply:
			if !(r.Value > 0 && r.Value <= MaxRuleMultiply) {
				return bad("%s must be within (0, %d], got %v", f("multiply"), MaxRuleMultiply, r.Value)
			}
			if l := math.Log(r.Value); l > 0 {
				logUp += l
			} else {
				logDown += l
			}
		default:
			return bad("%s: set add or multiply", f("effect"))
		}
	}
	// Every multiplier of one sign could match the same item: their
	// product must stay a finite float32 (an infinite factor times a zero
	// score is NaN).
	if logUp > math.Log(math.MaxFloat32)/2 || logDown < math.Log(math.SmallestNonzeroFloat32)/2 {
		return bad("rules: the multipliers' product could overflow (e^%.0f); use fewer or smaller multipliers", max(logUp, -logDown))
	}
	return nil
}

// setBoostsScript replaces the boost rules and bumps the rules version.
//
// KEYS: boosts, version
// ARGV: the JSON document ("" deletes)
var setBoostsScript = redis.NewScript(`
if ARGV[1] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[2])
`)

// SetBoosts validates and stores the whole boost rule set, returning the new
// rules version. Validation errors wrap ErrInvalidRules or
// ErrUnknownAttribute.
func (s *Store) SetBoosts(ctx context.Context, set BoostSet) (int64, error) {
	decl, err := s.declarations(ctx)
	if err != nil {
		return 0, err
	}
	if err := ValidateBoosts(&set, decl); err != nil {
		return 0, err
	}
	doc := ""
	if len(set.Rules) > 0 || set.MaxAdjustment != DefaultMaxAdjustment {
		b, err := json.Marshal(set)
		if err != nil {
			return 0, fmt.Errorf("encode boost rules: %w", err)
		}
		doc = string(b)
	}
	v, err := setBoostsScript.Run(ctx, s.rdb, []string{s.boosts, s.rulesVersion}, doc).Int64()
	if err != nil {
		return 0, fmt.Errorf("set boost rules: %w", err)
	}
	return v, nil
}

func parseBoosts(doc string) (BoostSet, error) {
	set := BoostSet{MaxAdjustment: DefaultMaxAdjustment}
	if doc == "" {
		return set, nil
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return BoostSet{}, fmt.Errorf("decode boost rules: %w", err)
	}
	return set, nil
}

// SortedDeclarations returns the declared attributes of r, sorted by name.
func (r *Rules) SortedDeclarations() []Declaration {
	if r == nil {
		return nil
	}
	out := make([]Declaration, 0, len(r.Attributes))
	for name, t := range r.Attributes {
		out = append(out, Declaration{Name: name, Type: t})
	}
	slices.SortFunc(out, func(a, b Declaration) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ratingPrior is C of the Bayesian-smoothed rating: this many ratings at
// the catalog's mean are added to every item's.
const ratingPrior = 10

// RatingPrior returns the catalog mean m of the smoothed rating: the mean
// of the item averages weighted by their counts, over items. smoothed
// computes (C·m + n·avg)/(C + n) from it.
type RatingPrior struct{ sum, n float64 }

// Add counts one item's rating.
func (p *RatingPrior) Add(it Item) {
	if it.RatingCount > 0 {
		p.sum += it.RatingAverage * float64(it.RatingCount)
		p.n += float64(it.RatingCount)
	}
}

// Mean is the catalog's mean rating (0 when nothing is rated).
func (p RatingPrior) Mean() float64 {
	if p.n == 0 {
		return 0
	}
	return p.sum / p.n
}

// Smoothed is the item's Bayesian-smoothed rating: (C·m + n·avg)/(C + n)
// with C = 10 ratings at the catalog mean m.
func (p RatingPrior) Smoothed(it Item) float64 {
	n := float64(max(it.RatingCount, 0))
	return (ratingPrior*p.Mean() + n*it.RatingAverage) / (ratingPrior + n)
}
