package ctl

import (
	"flag"
	"io"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func TestFilterOptionsProto(t *testing.T) {
	tests := []struct {
		name    string
		in      FilterOptions
		want    *recsysv1.Filter
		wantErr bool
	}{
		{"none", FilterOptions{}, nil, false},
		{"everything", FilterOptions{Categories: "a, b", ExcludeCategories: "c", MinPrice: "1.5", MaxPrice: "20",
			IncludeUnavailable: true, MemberTier: "gold", IncludePurchased: true},
			&recsysv1.Filter{IncludeCategories: []string{"a", "b"}, ExcludeCategories: []string{"c"},
				MinPrice: proto.Float64(1.5), MaxPrice: proto.Float64(20),
				Availability: recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE, MemberTier: "gold", IncludePurchased: true}, false},
		{"max only", FilterOptions{MaxPrice: "0"}, &recsysv1.Filter{MaxPrice: proto.Float64(0)}, false},
		{"bad price", FilterOptions{MinPrice: "cheap"}, nil, true},
	}
	for _, tc := range tests {
		got, err := tc.in.Proto()
		if (err != nil) != tc.wantErr || !proto.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

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
		pos, err := ParseArgs(fs, tc.args)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error %v, want error %v", tc.args, err, tc.wantErr)
			continue
		}
		if err == nil && (!slices.Equal(pos, tc.wantPos) || *after != tc.wantAfter) {
			t.Errorf("%q: got %q and %v, want %q and %v", tc.args, pos, *after, tc.wantPos, tc.wantAfter)
		}
	}
}
