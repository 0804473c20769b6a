// Package access identifies the callers of recsysd: who is calling (a name)
// and in which roles (what kind of service it is). The server's method table
// then says which roles may call which RPC.
//
// A caller proves its identity with a bearer token (gRPC metadata
// "authorization: Bearer <token>") or, when the server verifies client
// certificates, with its certificate. Tokens are configured as their SHA-256
// hashes only (see ParseTokens), so the tokens file does not hold usable
// secrets, and a presented token is compared against every configured hash
// in constant time.
package access

import (
	"context"
	"fmt"
	"strings"
)

// Roles is a set of roles; a caller may hold several.
type Roles uint8

// The roles. Each is one kind of calling service.
const (
	// Pages are product pages and other online readers: Recommend,
	// SimilarItems, BoughtTogether.
	Pages Roles = 1 << iota
	// Events are event producers: RecordEvents.
	Events
	// Push is the push sender: BatchRecommend.
	Push
	// Operator is people and jobs that manage the service (catalog, models,
	// profiles, deletion, opt-outs, blocklists); it may call every RPC.
	Operator
)

// AllRoles holds every role (the anonymous caller of a server without
// authentication has them all).
const AllRoles = Pages | Events | Push | Operator

var roleNames = []struct {
	r    Roles
	name string
}{{Pages, "pages"}, {Events, "events"}, {Push, "push"}, {Operator, "operator"}}

// RoleNames lists the names ParseRoles accepts, in a fixed order.
func RoleNames() []string {
	out := make([]string, len(roleNames))
	for i, rn := range roleNames {
		out[i] = rn.name
	}
	return out
}

// ParseRole parses one role name.
func ParseRole(s string) (Roles, error) {
	for _, rn := range roleNames {
		if s == rn.name {
			return rn.r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want one of %s)", s, strings.Join(RoleNames(), ", "))
}

// ParseRoles parses "+"-separated role names, such as "pages+events".
func ParseRoles(s string) (Roles, error) {
	if s == "" {
		return 0, fmt.Errorf("no role given (want one of %s)", strings.Join(RoleNames(), ", "))
	}
	var out Roles
	for _, part := range strings.Split(s, "+") {
		r, err := ParseRole(part)
		if err != nil {
			return 0, err
		}
		out |= r
	}
	return out, nil
}

// Has reports whether r shares at least one role with want.
func (r Roles) Has(want Roles) bool { return r&want != 0 }

// String returns the role names joined by "+", or "none".
func (r Roles) String() string {
	var parts []string
	for _, rn := range roleNames {
		if r&rn.r != 0 {
			parts = append(parts, rn.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Each calls fn with every single role in r.
func (r Roles) Each(fn func(Roles)) {
	for _, rn := range roleNames {
		if r&rn.r != 0 {
			fn(rn.r)
		}
	}
}

// Caller is an authenticated caller.
type Caller struct {
	Name  string // from the tokens file, or the certificate's common name
	Roles Roles
	Via   string // "token", "certificate" or "none" (authentication off)
}

// Anonymous is the caller of a server that runs without authentication.
var Anonymous = Caller{Name: "anonymous", Roles: AllRoles, Via: "none"}

type callerKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller ctx carries.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
