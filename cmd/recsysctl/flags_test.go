package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func TestFilterOptionsProto(t *testing.T) {
	tests := []struct {
		name    string
		in      filterFlags
		want    *recsysv1.Filter
		wantErr bool
	}{
		{"none", filterFlags{}, nil, false},
		{"everything", filterFlags{categories: "a, b", excludeCategories: "c", minPrice: "1.5", maxPrice: "20",
			includeUnavailable: true, memberTier: "gold", includePurchased: true},
			&recsysv1.Filter{IncludeCategories: []string{"a", "b"}, ExcludeCategories: []string{"c"},
				MinPrice: proto.Float64(1.5), MaxPrice: proto.Float64(20),
				Availability: recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE, MemberTier: "gold", IncludePurchased: true}, false},
		{"max only", filterFlags{maxPrice: "0"}, &recsysv1.Filter{MaxPrice: proto.Float64(0)}, false},
		{"bad price", filterFlags{minPrice: "cheap"}, nil, true},
	}
	for _, tc := range tests {
		got, err := tc.in.proto()
		if (err != nil) != tc.wantErr || !proto.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
