package loadgen

import (
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    Mix
		wantErr string
	}{
		{in: "recommend=70,events=25,similar=5", want: Mix{70, 25, 5}},
		{in: " Recommend = 1 , similar=1 ", want: Mix{Recommend: 1, Similar: 1}},
		{in: "events=0.5", want: Mix{Events: 0.5}},
		{in: "events=1,", want: Mix{Events: 1}},
		{in: "", wantErr: "no positive weight"},
		{in: "recommend=0", wantErr: "no positive weight"},
		{in: "recommend", wantErr: "not kind=weight"},
		{in: "browse=3", wantErr: `unknown kind "browse"`},
		{in: "events=-1", wantErr: "finite number >= 0"},
		{in: "events=NaN", wantErr: "finite number >= 0"},
		{in: "events=x", wantErr: "finite number >= 0"},
		{in: "events=1,events=2", wantErr: "events given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMix(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestMixPick(t *testing.T) {
	m := Mix{Recommend: 70, Events: 25, Similar: 5}
	tests := []struct {
		u    float64
		want Kind
	}{{0, Recommend}, {0.6999, Recommend}, {0.7, Events}, {0.9499, Events}, {0.95, Similar}, {0.999999, Similar}}
	for _, tc := range tests {
		if got := m.pick(tc.u); got != tc.want {
			t.Errorf("pick(%v): got %v, want %v", tc.u, got, tc.want)
		}
	}
	only := Mix{Events: 2}
	for _, u := range []float64{0, 0.5, 0.9999999} {
		if got := only.pick(u); got != Events {
			t.Errorf("events-only pick(%v): got %v", u, got)
		}
	}
}
