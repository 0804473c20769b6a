package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/recsys-dev/recsys/internal/access"
)

// ConnOptions say how a client reaches recsysd: which credentials it shows
// and whether the connection is TLS.
type ConnOptions struct {
	// Token is sent as "authorization: Bearer <token>" on every call.
	Token string
	// TLS turns TLS on, verifying the server against the system roots
	// unless CAFile is given. CAFile, CertFile or ServerName imply TLS.
	TLS bool
	// CAFile is the CA (PEM) that signed the server's certificate.
	CAFile string
	// CertFile and KeyFile are a client certificate (PEM) for servers that
	// verify client certificates.
	CertFile, KeyFile string
	// ServerName overrides the name the server's certificate is checked
	// against (default: the host of the address).
	ServerName string
}

// DialOptions returns the gRPC dial options for o.
func (o ConnOptions) DialOptions() ([]grpc.DialOption, error) {
	useTLS := o.TLS || o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.ServerName != ""
	var opts []grpc.DialOption
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("server CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("server CA %s: no PEM certificate in it", o.CAFile)
			}
			cfg.RootCAs = pool
		}
		if (o.CertFile == "") != (o.KeyFile == "") {
			return nil, errors.New("a client certificate needs both the certificate and the key file")
		}
		if o.CertFile != "" {
			c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(BearerToken{Token: o.Token, Secure: useTLS}))
	}
	return opts, nil
}

// BearerToken is a per-RPC credential sending "authorization: Bearer
// <Token>". With Secure false it is also sent over plaintext connections
// (inside a trusted network or a service mesh that encrypts); anywhere else
// use TLS, since whoever reads the token can call as its caller.
type BearerToken struct {
	Token  string
	Secure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b BearerToken) RequireTransportSecurity() bool { return b.Secure }

// TokenCommand runs `token new ROLES NAME`: it prints a fresh token (give
// it to the caller) and the line for recsysd's tokens file (which holds only
// the token's hash).
func TokenCommand(args []string, stdout io.Writer) error {
	if len(args) != 3 || args[0] != "new" {
		return errors.New("usage: recsysctl token new ROLES NAME  (ROLES: " + strings.Join(access.RoleNames(), ", ") + ", joined by '+')")
	}
	roles, err := access.ParseRoles(args[1])
	if err != nil {
		return err
	}
	tok, err := access.NewToken()
	if err != nil {
		return err
	}
	line := access.TokenLine(roles, args[2], tok)
	if _, err := access.ParseTokens(strings.NewReader(line), "new token"); err != nil {
		return err // an invalid name
	}
	_, err = fmt.Fprintf(stdout, "token (give to the caller, RECSYS_TOKEN):\n%s\ntokens-file line (for recsysd):\n%s\n", tok, line)
	return err
}
