package catalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/content"
)

// AttrType is the type of a custom attribute.
type AttrType uint8

// The attribute types; the numbering matches recsys.v1.AttributeType.
const (
	AttrUnspecified AttrType = iota
	AttrString               // matched by equality
	AttrNumber               // matched by a range
)

func (t AttrType) String() string {
	switch t {
	case AttrString:
		return "string"
	case AttrNumber:
		return "number"
	}
	return "unspecified"
}

// Attribute is one custom attribute value of an item: Str for a string
// attribute, Num for a number attribute.
type Attribute struct {
	Name string
	Type AttrType
	Str  string
	Num  float64
}

// Declaration declares a custom attribute.
type Declaration struct {
	Name string
	Type AttrType
}

// Limits of attribute declarations.
const (
	MaxDeclarations    = 100
	MaxAttrNameBytes   = 64
	MaxRatingAverage   = 5
	builtinAttrMessage = "category, brand, seller, title, price, rating and promotion are built in"
)

// Builtin attribute names rules can match without a declaration.
const (
	AttrCategory  = "category"
	AttrBrand     = "brand"
	AttrSeller    = "seller"
	AttrTitle     = "title"
	AttrPrice     = "price"
	AttrRating    = "rating"
	AttrPromotion = "promotion"
)

// BuiltinType returns the type of a built-in attribute name, and false for
// any other name.
func BuiltinType(name string) (AttrType, bool) {
	switch name {
	case AttrCategory, AttrBrand, AttrSeller, AttrTitle, AttrPromotion:
		return AttrString, true
	case AttrPrice, AttrRating:
		return AttrNumber, true
	}
	return AttrUnspecified, false
}

// Regions: where an item is sold and where a shopper is.
const (
	MaxItemRegions  = 64
	MaxRegionBytes  = 32
	regionCharsText = "a-z, 0-9, - and _"
)

// ValidRegion checks a region name: 1..32 bytes of a-z, 0-9, "-" and "_".
func ValidRegion(r string) error {
	if r == "" || len(r) > MaxRegionBytes {
		return fmt.Errorf("region must be 1..%d bytes, got %d", MaxRegionBytes, len(r))
	}
	for _, c := range []byte(r) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("region %q: only %s are allowed", r, regionCharsText)
		}
	}
	return nil
}

// InRegion reports whether the item may be shown in region: items without
// regions everywhere, the others only in the regions they list.
func (it Item) InRegion(region string) bool {
	return len(it.Regions) == 0 || slices.Contains(it.Regions, region)
}

// ErrUnknownAttribute is returned for an item attribute or rule that names
// an attribute nobody declared, or uses it with another type.
var ErrUnknownAttribute = errors.New("undeclared attribute")

// ValidAttrName reports whether name can be declared: 1..64 bytes of
// [a-z0-9_], not a built-in name.
func ValidAttrName(name string) error {
	if name == "" || len(name) > MaxAttrNameBytes {
		return fmt.Errorf("attribute name must be 1..%d bytes, got %d", MaxAttrNameBytes, len(name))
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("attribute name %q: only a-z, 0-9 and _ are allowed", name)
		}
	}
	if _, ok := BuiltinType(name); ok {
		return fmt.Errorf("attribute name %q is built in (%s)", name, builtinAttrMessage)
	}
	return nil
}

// described reports whether it has any descriptive field, so it needs
// item format 1.
func (it Item) described() bool {
	return it.Title != "" || it.Brand != "" || it.Seller != "" || it.RatingCount != 0 || it.RatingAverage != 0 ||
		it.Promotion || len(it.Attributes) > 0 || len(it.Regions) > 0
}

// Content is what the content map (package content: new items placed by
// their attributes) reads of the item; its string attributes are tags
// "name=value". The trainer and the server both use it, so they describe an
// item alike.
func (it Item) Content() content.Item {
	c := content.Item{Category: it.Category, Brand: it.Brand, Seller: it.Seller, Title: it.Title, Price: it.Price}
	for _, a := range it.Attributes {
		if a.Type == AttrString {
			c.Tags = append(c.Tags, a.Name+"="+a.Str)
		}
	}
	return c
}

// Attr returns the item's value of a built-in or custom attribute: a string
// (with isNum false) or a number; ok is false when the item has no value.
// rating is the item's smoothed rating, computed by the caller.
func (it Item) Attr(name string, rating float64) (str string, num float64, isNum, ok bool) {
	switch name {
	case AttrCategory:
		return it.Category, 0, false, it.Category != ""
	case AttrBrand:
		return it.Brand, 0, false, it.Brand != ""
	case AttrSeller:
		return it.Seller, 0, false, it.Seller != ""
	case AttrTitle:
		return it.Title, 0, false, it.Title != ""
	case AttrPromotion:
		return strconv.FormatBool(it.Promotion), 0, false, true
	case AttrPrice:
		return "", it.Price, true, it.Price > 0
	case AttrRating:
		return "", rating, true, it.RatingCount > 0
	}
	for _, a := range it.Attributes {
		if a.Name == name {
			return a.Str, a.Num, a.Type == AttrNumber, true
		}
	}
	return "", 0, false, false
}

func checkText(field, v string, maxBytes int) error {
	switch {
	case len(v) > maxBytes:
		return fmt.Errorf("%s is %d bytes, more than %d", field, len(v), maxBytes)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	return nil
}

// ValidateDescription checks the descriptive fields of it (title, brand,
// seller, rating, attributes) as far as they need no declarations; Upsert
// also checks the attributes against the declarations.
func ValidateDescription(it Item) error { return validateAttrs(it) }

func validateAttrs(it Item) error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"title", it.Title, MaxTitleBytes}, {"brand", it.Brand, MaxNameBytes}, {"seller", it.Seller, MaxNameBytes}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	switch {
	case !(it.RatingAverage >= 0 && it.RatingAverage <= MaxRatingAverage):
		return fmt.Errorf("rating_average must be within 0..%d, got %v", MaxRatingAverage, it.RatingAverage)
	case it.RatingCount < 0:
		return fmt.Errorf("rating_count must be >= 0, got %d", it.RatingCount)
	case len(it.Attributes) > MaxItemAttributes:
		return fmt.Errorf("attributes: %d, at most %d", len(it.Attributes), MaxItemAttributes)
	}
	if len(it.Regions) > MaxItemRegions {
		return fmt.Errorf("regions: %d, at most %d", len(it.Regions), MaxItemRegions)
	}
	for i, r := range it.Regions {
		if err := ValidRegion(r); err != nil {
			return fmt.Errorf("regions[%d]: %w", i, err)
		}
		if slices.Contains(it.Regions[:i], r) {
			return fmt.Errorf("regions[%d]: %q repeated", i, r)
		}
	}
	seen := make(map[string]struct{}, len(it.Attributes))
	for i, a := range it.Attributes {
		if _, dup := seen[a.Name]; dup {
			return fmt.Errorf("attributes[%d]: name %q repeated", i, a.Name)
		}
		seen[a.Name] = struct{}{}
		if err := ValidAttrName(a.Name); err != nil {
			return fmt.Errorf("attributes[%d]: %w", i, err)
		}
		switch a.Type {
		case AttrString:
			if err := checkText(fmt.Sprintf("attributes[%d] (%s) value", i, a.Name), a.Str, MaxNameBytes); err != nil {
				return err
			}
		case AttrNumber:
			if math.IsNaN(a.Num) || math.IsInf(a.Num, 0) {
				return fmt.Errorf("attributes[%d] (%s): number must be finite, got %v", i, a.Name, a.Num)
			}
		default:
			return fmt.Errorf("attributes[%d] (%s): no value", i, a.Name)
		}
	}
	return nil
}

// checkDeclared reports an item attribute whose name is not declared, or
// is declared with another type.
func checkDeclared(items []Item, decl map[string]AttrType) error {
	for i, it := range items {
		for j, a := range it.Attributes {
			t, ok := decl[a.Name]
			switch {
			case !ok:
				return fmt.Errorf("item %d (id %q): attributes[%d]: %w %q (DeclareAttributes first)", i, it.ID, j, ErrUnknownAttribute, a.Name)
			case t != a.Type:
				return fmt.Errorf("item %d (id %q): attributes[%d]: %w: %q is declared %v, got a %v", i, it.ID, j, ErrUnknownAttribute, a.Name, t, a.Type)
			}
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Flags of the description.
const (
	descPromotion = 0x01
	descRegions   = 0x02 // the attributes are followed by the item's regions
)

// appendDescription writes the descriptive fields (format 1):
//
//	uvarint+bytes  title, brand, seller
//	8 bytes        rating average, float64 little-endian
//	uvarint        rating count
//	byte           flags: bit 0 promotion
//	uvarint        number of attributes, then each: uvarint+bytes name,
//	               byte type (1 string, 2 number), then uvarint+bytes (string)
//	               or 8 bytes float64 little-endian (number)
func appendDescription(b []byte, it Item) []byte {
	b = appendString(b, it.Title)
	b = appendString(b, it.Brand)
	b = appendString(b, it.Seller)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(it.RatingAverage))
	b = binary.AppendUvarint(b, uint64(it.RatingCount))
	var flags byte
	if it.Promotion {
		flags |= descPromotion
	}
	if len(it.Regions) > 0 {
		flags |= descRegions
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(it.Attributes)))
	for _, a := range it.Attributes {
		b = appendString(b, a.Name)
		b = append(b, byte(a.Type))
		if a.Type == AttrNumber {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Num))
		} else {
			b = appendString(b, a.Str)
		}
	}
	if len(it.Regions) > 0 {
		b = binary.AppendUvarint(b, uint64(len(it.Regions)))
		for _, r := range it.Regions {
			b = appendString(b, r)
		}
	}
	return b
}

// decoder reads format-1 fields; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("truncated string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) float() float64 {
	if d.err == nil && len(d.b) < 8 {
		d.err = errors.New("truncated number")
	}
	if d.err != nil {
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte() byte {
	if d.err == nil && len(d.b) < 1 {
		d.err = errors.New("truncated")
	}
	if d.err != nil {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) description(it *Item) {
	it.Title, it.Brand, it.Seller = d.string(), d.string(), d.string()
	it.RatingAverage = d.float()
	it.RatingCount = int64(d.uvarint())
	flags := d.byte()
	it.Promotion = flags&descPromotion != 0
	n := d.uvarint()
	if d.err == nil && n > MaxItemAttributes {
		d.err = fmt.Errorf("%d attributes", n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		a := Attribute{Name: d.string(), Type: AttrType(d.byte())}
		switch a.Type {
		case AttrNumber:
			a.Num = d.float()
		case AttrString:
			a.Str = d.string()
		default:
			if d.err == nil {
				d.err = fmt.Errorf("attribute %q of unknown type %d", a.Name, a.Type)
			}
		}
		it.Attributes = append(it.Attributes, a)
	}
	if flags&descRegions != 0 {
		n := d.uvarint()
		if d.err == nil && (n == 0 || n > MaxItemRegions) {
			d.err = fmt.Errorf("%d regions", n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			it.Regions = append(it.Regions, d.string())
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the item", len(d.b))
	}
}

// declareScript adds attribute declarations and bumps the rules version.
//
// KEYS: attributes, version
// ARGV: max declarations, then name, type pairs.
// Error replies: "FULL ..." over the limit, "TYPE name" for a name declared
// with another type (nothing is written then).
var declareScript = redis.NewScript(`
local fresh = 0
for i = 2, #ARGV, 2 do
  local t = redis.call('HGET', KEYS[1], ARGV[i])
  if not t then fresh = fresh + 1
  elseif t ~= ARGV[i + 1] then return redis.error_reply('TYPE ' .. ARGV[i]) end
end
if redis.call('HLEN', KEYS[1]) + fresh > tonumber(ARGV[1]) then
  return redis.error_reply('FULL attributes would exceed ' .. ARGV[1] .. ' declarations')
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('INCR', KEYS[2])
return redis.call('HLEN', KEYS[1])
`)

// DeclareAttributes declares custom attributes; declaring a name again with
// its type is a no-op, with another type an ErrUnknownAttribute. It returns
// how many are declared in all.
func (s *Store) DeclareAttributes(ctx context.Context, decls []Declaration) (int, error) {
	args := make([]any, 0, 1+2*len(decls))
	args = append(args, strconv.Itoa(MaxDeclarations))
	for i, d := range decls {
		if err := ValidAttrName(d.Name); err != nil {
			return 0, fmt.Errorf("attributes[%d]: %w", i, err)
		}
		if d.Type != AttrString && d.Type != AttrNumber {
			return 0, fmt.Errorf("attributes[%d] (%s): type must be string or number", i, d.Name)
		}
		args = append(args, d.Name, strconv.Itoa(int(d.Type)))
	}
	n, err := declareScript.Run(ctx, s.rdb, []string{s.attributes, s.rulesVersion}, args...).Int()
	switch {
	case redis.HasErrorPrefix(err, "FULL"):
		return 0, fmt.Errorf("declare attributes: %w: %v", ErrRulesFull, err)
	case redis.HasErrorPrefix(err, "TYPE"):
		return 0, fmt.Errorf("declare attributes: %w: %v is already declared with another type", ErrUnknownAttribute, err)
	case err != nil:
		return 0, fmt.Errorf("declare attributes: %w", err)
	}
	return n, nil
}

// declarations reads the declared attributes.
func (s *Store) declarations(ctx context.Context) (map[string]AttrType, error) {
	m, err := s.rdb.HGetAll(ctx, s.attributes).Result()
	if err != nil {
		return nil, fmt.Errorf("read attribute declarations: %w", err)
	}
	return parseDeclarations(m)
}

func parseDeclarations(m map[string]string) (map[string]AttrType, error) {
	out := make(map[string]AttrType, len(m))
	for name, v := range m {
		t, err := strconv.Atoi(v)
		if err != nil || (AttrType(t) != AttrString && AttrType(t) != AttrNumber) {
			return nil, fmt.Errorf("attribute %q: bad declared type %q", name, v)
		}
		out[name] = AttrType(t)
	}
	return out, nil
}
