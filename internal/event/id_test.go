package event

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want string // "" = valid
	}{
		{"plain", "i271", ""},
		{"max", strings.Repeat("x", MaxIDBytes), ""},
		{"any valid character", "a b\t\n\x00{}*?[]\\% 🙂", ""},
		{"empty", "", "is empty"},
		{"one byte too long", strings.Repeat("x", MaxIDBytes+1), "is 257 bytes"},
		{"2 MB", strings.Repeat("x", 2<<20), "is 2097152 bytes"},
		{"invalid UTF-8", "i271\xff", "not valid UTF-8"},
		{"surrogate half", "a\xed\xa0\x80", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckID(tt.id)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckID = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrBadID) {
				t.Fatalf("CheckID = %v, want an ErrBadID containing %q", err, tt.want)
			}
			if len(err.Error()) > 100 {
				t.Errorf("error of %d bytes echoes the id", len(err.Error()))
			}
		})
	}
}

func TestCheckIDsNamesTheField(t *testing.T) {
	e := Event{ID: "e1", UserID: "u", ItemID: "i\xff"}
	if err := e.CheckIDs(); err == nil || err.Error() != "item id is not valid UTF-8" {
		t.Fatalf("CheckIDs = %v", err)
	}
	e = Event{UserID: "u", ItemID: "i"} // no event id: derived later
	if err := e.CheckIDs(); err != nil {
		t.Fatalf("CheckIDs without event id = %v", err)
	}
	e.ID = strings.Repeat("e", MaxIDBytes+1)
	if err := e.CheckIDs(); err == nil || !strings.HasPrefix(err.Error(), "event id is 257") {
		t.Fatalf("CheckIDs = %v", err)
	}
}
