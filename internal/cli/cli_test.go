package cli

import (
	"flag"
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseArgsAcceptsFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantPos   []string
		wantAfter time.Duration
		wantErr   bool
	}{
		{[]string{"food", "--repeatable-after", "720h"}, []string{"food"}, 720 * time.Hour, false},
		{[]string{"--repeatable-after", "720h", "food", "drinks"}, []string{"food", "drinks"}, 720 * time.Hour, false},
		{[]string{"food", "--repeatable-after=1h", "drinks"}, []string{"food", "drinks"}, time.Hour, false},
		{[]string{"food", "--", "--odd-name", "-"}, []string{"food", "--odd-name", "-"}, 0, false},
		{[]string{"-", "food"}, []string{"-", "food"}, 0, false},
		{[]string{"food", "--repeatable-after"}, nil, 0, true},
		{[]string{"food", "--nope"}, nil, 0, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		after := fs.Duration("repeatable-after", 0, "")
		pos, err := Parse(fs, tc.args)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error %v, want error %v", tc.args, err, tc.wantErr)
			continue
		}
		if err == nil && (!slices.Equal(pos, tc.wantPos) || *after != tc.wantAfter) {
			t.Errorf("%q: got %q and %v, want %q and %v", tc.args, pos, *after, tc.wantPos, tc.wantAfter)
		}
	}
}
