package access

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestParseRoles(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Roles
		wantErr bool
	}{
		{"pages", Pages, false},
		{"events+pages", Pages | Events, false},
		{"push+operator", Push | Operator, false},
		{"", 0, true},
		{"admin", 0, true},
		{"pages+", 0, true},
		{"Pages", 0, true},
	} {
		got, err := ParseRoles(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRoles(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if got, want := (Pages | Operator).String(), "pages+operator"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
	if got := Roles(0).String(); got != "none" {
		t.Errorf("empty String: got %q", got)
	}
}

func TestParseTokens(t *testing.T) {
	h1, h2, h3 := HashToken("t1"), HashToken("t2"), HashToken("t3")
	good := "# callers of recsysd\n\npages:product-pages:" + h1 + "\n  events+pages:shop.events_1:" + strings.ToUpper(h2) +
		"  \noperator:ops:" + h3 + "\n"
	tk, err := ParseTokens(strings.NewReader(good), "good")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Len() != 3 {
		t.Fatalf("got %d entries, want 3", tk.Len())
	}
	for _, tc := range []struct {
		token string
		want  Caller
		ok    bool
	}{
		{"t1", Caller{Name: "product-pages", Roles: Pages, Via: "token"}, true},
		{"t2", Caller{Name: "shop.events_1", Roles: Pages | Events, Via: "token"}, true},
		{"t3", Caller{Name: "ops", Roles: Operator, Via: "token"}, true},
		{"t4", Caller{}, false},
		{"", Caller{}, false},
		{h1, Caller{}, false}, // the hash itself is not a token
	} {
		got, ok := tk.Lookup(tc.token)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Lookup(%q) = %+v %v, want %+v %v", tc.token, got, ok, tc.want, tc.ok)
		}
	}

	// Commas separate entries, for an environment variable.
	tk, err = ParseTokens(strings.NewReader("pages:a:"+h1+", events:b:"+h2), "env")
	if err != nil || tk.Len() != 2 {
		t.Fatalf("comma list: %v, %d entries", err, tk.Len())
	}

	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"two fields", "pages:" + h1, "want ROLES:NAME:SHA256HEX"},
		{"unknown role", "admin:x:" + h1, `unknown role "admin"`},
		{"bad name", "pages:a b:" + h1, "caller name"},
		{"token instead of hash", "pages:x:secret-token", "the SHA-256 of the token"},
		{"not hex", "pages:x:" + strings.Repeat("g", 64), "hash"},
		{"duplicate name", "pages:x:" + h1 + "\nevents:x:" + h2, `"x" given twice`},
		{"duplicate token", "pages:x:" + h1 + "\nevents:y:" + h1, "also another caller's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokens(strings.NewReader(tc.in), "f")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "f line ") {
				t.Errorf("got %v, want an error with the line and %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewTokenAndLine(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || len(a) < 40 {
		t.Fatalf("tokens %q %q: want distinct random tokens", a, b)
	}
	tk, err := ParseTokens(strings.NewReader(TokenLine(Push|Operator, "push-sender", a)), "line")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tk.Lookup(a); !ok || c.Name != "push-sender" || c.Roles != Push|Operator {
		t.Errorf("got %+v %v", c, ok)
	}
}

func TestCallerFromCert(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "pages-eu", Organization: []string{"Example Corp", "recsys:pages", "recsys:push", "recsys:root"}}}
	got := CallerFromCert(cert)
	want := Caller{Name: "pages-eu", Roles: Pages | Push, Via: "certificate"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := CallerFromCert(&x509.Certificate{Subject: pkix.Name{CommonName: "x", Organization: []string{"operator"}}}); got.Roles != 0 {
		t.Errorf("O=operator without the recsys: prefix granted %v", got.Roles)
	}
}

func TestAuthenticate(t *testing.T) {
	tk, err := ParseTokens(strings.NewReader("pages:p:"+HashToken("good")), "t")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(tk, true)
	md := func(vals ...string) context.Context {
		m := metadata.MD{}
		for _, v := range vals {
			m.Append("authorization", v)
		}
		return metadata.NewIncomingContext(context.Background(), m)
	}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		want    string
		wantErr error
	}{
		{"bearer", md("Bearer good"), "p", nil},
		{"scheme case", md("bearer good"), "p", nil},
		{"wrong token", md("Bearer bad"), "", ErrBadCredentials},
		{"basic scheme", md("Basic good"), "", ErrBadCredentials},
		{"no scheme", md("good"), "", ErrBadCredentials},
		{"two headers", md("Bearer good", "Bearer good"), "", ErrBadCredentials},
		{"nothing", context.Background(), "", ErrNoCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := a.Authenticate(tc.ctx)
			if !errors.Is(err, tc.wantErr) || c.Name != tc.want {
				t.Errorf("got %+v %v, want %q %v", c, err, tc.want, tc.wantErr)
			}
		})
	}
	// Rotation: the old token stops working, the new one works.
	tk2, _ := ParseTokens(strings.NewReader("pages:p:"+HashToken("rotated")), "t")
	a.SetTokens(tk2)
	if _, err := a.Authenticate(md("Bearer good")); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old token after rotation: %v", err)
	}
	if c, err := a.Authenticate(md("Bearer rotated")); err != nil || c.Name != "p" {
		t.Errorf("new token after rotation: %+v %v", c, err)
	}
}

func BenchmarkLookup(b *testing.B) {
	var lines []string
	for i := range 50 {
		tok, _ := NewToken()
		lines = append(lines, TokenLine(Pages, "c"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('a'+i/26)), tok))
	}
	tk, err := ParseTokens(strings.NewReader(strings.Join(lines, "\n")), "b")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tk.Lookup("rst_not-a-configured-token-but-of-the-usual-length-xxxxxx")
	}
}
