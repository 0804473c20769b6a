package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// basket reads a JSON object of users to baskets in time order, as the
// Ta-Feng file of the next-basket literature:
//
//	{"1": [[0, 1, 2], [3, 4]], "2": [[5]]}
//
// Each item of a basket becomes a Purchase. The baskets have no times, so
// the k-th basket of a user (k = 0, 1, ...) gets BaseTime + k*BasketStep and
// all its items share that time. Users come out in file order. Items may be
// JSON integers or strings; the id is the text as written.
//
// The file is read with json.Decoder's token API, one token at a time, so
// its size does not matter. A syntax error stops the read even with
// SkipBadRows (the rest cannot be parsed reliably); a value of the wrong
// kind (an object where a basket should be, a bool as an item) is a bad row
// that SkipBadRows skips. Errors name the user, basket and item index and
// the byte offset after which the fault lies.
func (r *reader) basket(in io.Reader) error {
	dec := json.NewDecoder(in)
	dec.UseNumber()
	base, step := r.opts.baseTime(), r.opts.basketStep()
	if err := r.expectDelim(dec, '{', "the top level (want an object of user: baskets)"); err != nil {
		return err
	}
	for dec.More() {
		tok, err := r.token(dec)
		if err != nil {
			return err
		}
		user, _ := tok.(string) // object keys are always strings
		where := func(b, i int) string {
			s := "user " + strconv.Quote(user)
			if b >= 0 {
				s += " basket " + strconv.Itoa(b)
			}
			if i >= 0 {
				s += " item " + strconv.Itoa(i)
			}
			return s
		}
		if strings.TrimSpace(user) == "" {
			off := dec.InputOffset()
			tok, err := r.token(dec)
			if err != nil {
				return err
			}
			if err := r.skipValue(dec, tok); err != nil {
				return err
			}
			if err := r.bad(&RowError{Offset: off, Field: "user", Err: errors.New("empty user id")}); err != nil {
				return err
			}
			continue
		}
		ok, err := r.openArray(dec, where(-1, -1), "want an array of baskets")
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for b := 0; dec.More(); b++ {
			ok, err := r.openArray(dec, where(b, -1), "want a basket, an array of items")
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := r.row(); err != nil {
				return err
			}
			at := base.Add(time.Duration(b) * step)
			for i := 0; dec.More(); i++ {
				off := dec.InputOffset()
				tok, err := r.token(dec)
				if err != nil {
					return err
				}
				item, problem := itemID(tok)
				if problem != "" {
					if err := r.skipValue(dec, tok); err != nil {
						return err
					}
					if err := r.bad(&RowError{Offset: off, Field: where(b, i), Err: errors.New(problem)}); err != nil {
						return err
					}
					continue
				}
				e := event.Event{UserID: user, ItemID: item, Type: event.Purchase, Time: at}
				if err := r.emit(e, 0, off); err != nil {
					return err
				}
			}
			if err := r.expectDelim(dec, ']', where(b, -1)); err != nil {
				return err
			}
		}
		if err := r.expectDelim(dec, ']', where(-1, -1)); err != nil {
			return err
		}
	}
	if err := r.expectDelim(dec, '}', "the end of the top-level object"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: after byte %d: unexpected data after the top-level object", r.opts.Name, dec.InputOffset())
	}
	return nil
}

// itemID turns a token into an item id, or says why it cannot be one.
func itemID(tok json.Token) (string, string) {
	switch v := tok.(type) {
	case json.Number:
		s := v.String()
		if strings.ContainsAny(s, ".eE") {
			return "", fmt.Sprintf("item %s is not an integer or a string", s)
		}
		return s, ""
	case string:
		if strings.TrimSpace(v) == "" {
			return "", "empty item id"
		}
		return v, ""
	case json.Delim:
		return "", fmt.Sprintf("want an item (integer or string), got %q", v.String())
	default:
		return "", fmt.Sprintf("want an item (integer or string), got %v", v)
	}
}

// token reads a token; a syntax error is fatal.
func (r *reader) token(dec *json.Decoder) (json.Token, error) {
	off := dec.InputOffset()
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: after byte %d: unexpected end of JSON", r.opts.Name, off)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: after byte %d: JSON: %w", r.opts.Name, off, err)
	}
	return tok, nil
}

func (r *reader) expectDelim(dec *json.Decoder, want json.Delim, where string) error {
	off := dec.InputOffset()
	tok, err := r.token(dec)
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s: after byte %d: %s: want %q, got %v", r.opts.Name, off, where, want.String(), tok)
	}
	return nil
}

// openArray reads the '[' that starts an array. For any other value it
// skips the value and reports a bad row; ok tells whether the array is open.
func (r *reader) openArray(dec *json.Decoder, where, problem string) (ok bool, err error) {
	off := dec.InputOffset()
	tok, err := r.token(dec)
	if err != nil {
		return false, err
	}
	if d, isDelim := tok.(json.Delim); isDelim && d == '[' {
		return true, nil
	}
	if err := r.skipValue(dec, tok); err != nil {
		return false, err
	}
	return false, r.bad(&RowError{Offset: off, Field: where, Value: fmt.Sprint(tok), Err: errors.New(problem)})
}

// skipValue consumes the rest of a value whose first token was tok.
func (r *reader) skipValue(dec *json.Decoder, tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '[' && d != '{') {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := r.token(dec)
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '[', '{':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}
