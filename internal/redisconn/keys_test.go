package redisconn

import "testing"

func TestEscapeTag(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"u42", "u42"},
		{"a}b", "a%7Db"},
		{"}x", "%7Dx"},
		{"100%", "100%25"},
		{"%7D", "%257D"}, // not the escape of "}": one to one
	} {
		if got := EscapeTag(tc.id); got != tc.want {
			t.Errorf("EscapeTag(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}
