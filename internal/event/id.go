package event

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxIDBytes is the longest user, item or event id anywhere in the system:
// the API, the profile store, imports, every data set reader, the trainer and
// the model artifact. The README promises ids of up to 256 bytes.
const MaxIDBytes = 256

// ErrBadID marks an id that breaks the one id rule (CheckID); errors.Is
// finds it in every error CheckID returns.
var ErrBadID = errors.New("bad id")

// idError is why an id is bad, phrased to follow the id's name ("item id
// is not valid UTF-8").
type idError string

func (e idError) Error() string        { return string(e) }
func (e idError) Is(target error) bool { return target == ErrBadID }

// CheckID is the one id rule: an id is 1..MaxIDBytes bytes of valid UTF-8.
// Any valid character is allowed (spaces, tabs, newlines, NUL, emoji: the
// README's promise), so an id that passes is exactly one protobuf can
// marshal and the API accepts. The error never echoes the id (it may be
// megabytes of garbage); it reads well after the id's name:
// "item id " + err.Error().
func CheckID(id string) error {
	switch {
	case id == "":
		return idError("is empty")
	case len(id) > MaxIDBytes:
		return idError(fmt.Sprintf("is %d bytes, at most %d allowed", len(id), MaxIDBytes))
	case !utf8.ValidString(id):
		return idError("is not valid UTF-8")
	}
	return nil
}

// CheckIDs applies CheckID to e's user and item id and, when present, its
// event id, and names the one at fault ("item id is not valid UTF-8").
func (e Event) CheckIDs() error {
	if err := CheckID(e.UserID); err != nil {
		return fmt.Errorf("user id %w", err)
	}
	if err := CheckID(e.ItemID); err != nil {
		return fmt.Errorf("item id %w", err)
	}
	if e.ID != "" {
		if err := CheckID(e.ID); err != nil {
			return fmt.Errorf("event id %w", err)
		}
	}
	return nil
}
