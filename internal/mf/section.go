package mf

import (
	"fmt"
	"slices"
	"strings"
)

// Section is one typed, versioned part of a model artifact beyond the id
// table and the factors: a serving index, blend terms, content vectors.
// mf stores and checks sections but never interprets their payload; the
// package that owns a kind encodes and decodes it, and a reader that does not
// know a kind keeps it untouched, so a newer trainer's artifact still serves
// on an older server.
type Section struct {
	// Kind names the section: 1..MaxSectionKind bytes of [a-z0-9_-], unique
	// within a model. The owner picks it; models/README.md lists the kinds
	// in use.
	Kind string
	// Version is the owner's payload format version.
	Version uint32
	// Data is the payload.
	Data []byte
}

// Limits on sections, enforced when a model is built or read.
const (
	MaxSections    = 64
	MaxSectionKind = 32
	// MaxSectionBytes bounds one payload (4 GiB − 1: the length field is
	// 64-bit, the bound keeps a damaged length from meaning more).
	MaxSectionBytes = 1<<32 - 1
)

// validKind reports whether k is a well-formed section kind.
func validKind(k string) bool {
	if k == "" || len(k) > MaxSectionKind {
		return false
	}
	return strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
}

// checkSections validates a sorted, deduplicated set of sections.
func checkSections(s []Section) error {
	if len(s) > MaxSections {
		return fmt.Errorf("%w: %d sections, at most %d", ErrInvalid, len(s), MaxSections)
	}
	for i, sec := range s {
		if !validKind(sec.Kind) {
			return fmt.Errorf("%w: section kind %q (want 1..%d bytes of [a-z0-9_-])", ErrInvalid, sec.Kind, MaxSectionKind)
		}
		if int64(len(sec.Data)) > MaxSectionBytes {
			return fmt.Errorf("%w: section %q has %d bytes", ErrInvalid, sec.Kind, len(sec.Data))
		}
		if i > 0 && s[i-1].Kind >= sec.Kind {
			return fmt.Errorf("%w: section %q appears twice or out of order", ErrInvalid, sec.Kind)
		}
	}
	return nil
}

// Section returns the section of the given kind, if the model has one.
// Callers must not modify its Data.
func (m *Model) Section(kind string) (Section, bool) {
	i, ok := slices.BinarySearchFunc(m.sections, kind, func(s Section, k string) int { return strings.Compare(s.Kind, k) })
	if !ok {
		return Section{}, false
	}
	return m.sections[i], true
}

// Sections returns every section, sorted by kind. Callers must not modify
// the result.
func (m *Model) Sections() []Section { return m.sections }

// WithSections returns a copy of m with the given sections added; a section
// replaces one of the same kind. The copy shares the factors, id table and
// derived state with m, which is left unchanged.
func (m *Model) WithSections(add ...Section) (*Model, error) {
	merged := slices.Clone(m.sections)
	for _, s := range add {
		i, ok := slices.BinarySearchFunc(merged, s.Kind, func(e Section, k string) int { return strings.Compare(e.Kind, k) })
		if ok {
			merged[i] = s
		} else {
			merged = slices.Insert(merged, i, s)
		}
	}
	if err := checkSections(merged); err != nil {
		return nil, err
	}
	c := *m
	c.sections = merged
	return &c, nil
}
