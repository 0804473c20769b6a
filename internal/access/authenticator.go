package access

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Errors of Authenticate; the server answers both with Unauthenticated.
var (
	ErrNoCredentials  = errors.New("no credentials: send \"authorization: Bearer <token>\" or a client certificate")
	ErrBadCredentials = errors.New("invalid credentials")
)

// CertRolePrefix marks the Organization (O) entries of a client certificate
// that grant a role: O=recsys:pages grants Pages.
const CertRolePrefix = "recsys:"

// Authenticator finds the caller of an RPC from its bearer token or its
// verified client certificate. The token set can be replaced while the
// server runs (SetTokens), for rotation without a restart.
type Authenticator struct {
	tokens atomic.Pointer[Tokens]
	certs  bool
}

// NewAuthenticator returns an authenticator accepting tokens (may be nil or
// empty) and, when certs is set, verified client certificates.
func NewAuthenticator(tokens *Tokens, certs bool) *Authenticator {
	a := &Authenticator{certs: certs}
	a.SetTokens(tokens)
	return a
}

// SetTokens replaces the accepted tokens.
func (a *Authenticator) SetTokens(t *Tokens) {
	if t == nil {
		t = &Tokens{}
	}
	a.tokens.Store(t)
}

// Tokens returns the accepted tokens.
func (a *Authenticator) Tokens() *Tokens { return a.tokens.Load() }

// Authenticate returns the caller of the RPC whose context is ctx. A
// presented token decides alone (a wrong token is refused even when a valid
// certificate was presented too); without one, a verified client
// certificate names the caller (CallerFromCert).
func (a *Authenticator) Authenticate(ctx context.Context) (Caller, error) {
	if vals := metadata.ValueFromIncomingContext(ctx, "authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return Caller{}, ErrBadCredentials
		}
		scheme, token, ok := strings.Cut(vals[0], " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return Caller{}, ErrBadCredentials
		}
		c, ok := a.tokens.Load().Lookup(strings.TrimSpace(token))
		if !ok {
			return Caller{}, ErrBadCredentials
		}
		return c, nil
	}
	if a.certs {
		if cert := verifiedClientCert(ctx); cert != nil {
			return CallerFromCert(cert), nil
		}
	}
	return Caller{}, ErrNoCredentials
}

// verifiedClientCert returns the leaf of the client's verified chain, or nil.
func verifiedClientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}

// CallerFromCert names the caller of a verified client certificate: the
// subject's common name (CN) is its name, and every subject Organization (O)
// entry "recsys:<role>" grants that role (O=recsys:pages, O=recsys:events,
// ...). Other O entries are ignored, so a certificate from a shared company
// CA grants nothing unless it was issued for recsys. A certificate without
// such an entry authenticates but may call nothing.
func CallerFromCert(cert *x509.Certificate) Caller {
	c := Caller{Name: cert.Subject.CommonName, Via: "certificate"}
	for _, o := range cert.Subject.Organization {
		if name, ok := strings.CutPrefix(o, CertRolePrefix); ok {
			if r, err := ParseRole(name); err == nil {
				c.Roles |= r
			}
		}
	}
	return c
}
