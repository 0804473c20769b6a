package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func TestAuthMustBeConfigured(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	line := access.TokenLine(access.Pages, "p", "tok")
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		cfg     daemon.Config
		wantErr string
	}{
		{"real redis, no callers", daemon.Config{RedisAddr: redistest.Addr()}, "no callers configured"},
		{"explicitly open", daemon.Config{RedisAddr: redistest.Addr(), InsecureNoAuth: true}, ""},
		{"tokens", daemon.Config{RedisAddr: redistest.Addr(), Tokens: line}, ""},
		{"open and tokens", daemon.Config{RedisAddr: redistest.Addr(), Tokens: line, InsecureNoAuth: true}, "contradicts"},
		{"bad token line", daemon.Config{RedisAddr: redistest.Addr(), Tokens: "pages:p:secret"}, "SHA-256"},
		{"missing tokens file", daemon.Config{RedisAddr: redistest.Addr(), TokensFile: filepath.Join(dir, "nope")}, "tokens file"},
		{"client CA without TLS", daemon.Config{RedisAddr: redistest.Addr(), ClientCA: filepath.Join(dir, "ca.pem")}, "needs --tls-cert"},
		{"embedded demo store", daemon.Config{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.GRPCAddr = "127.0.0.1:0"
			d, err := daemon.New(tc.cfg, log)
			if d != nil {
				d.Close()
			}
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// pki is a throwaway certificate authority with server and client
// certificates written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a certificate and key for cn (O entries org) and returns
// their paths. Server certificates are for 127.0.0.1.
func (p *pki) issue(t *testing.T, name, cn string, org []string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial + 1), Subject: pkix.Name{CommonName: cn, Organization: org},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

// TestTLSClientCertificatesAndTokens serves TLS with client certificates
// verified against a CA, and tokens besides, and calls it the way recsysctl
// does (client.TLSFiles and a token): the certificate's O=recsys:<role> entries give the
// roles, a token decides when one is sent, a certificate from another CA
// gives nothing, and the plaintext health port answers probes.
func TestTLSClientCertificatesAndTokens(t *testing.T) {
	ca := newPKI(t, "recsys test CA")
	serverCert, serverKey := ca.issue(t, "server", "recsysd", nil, true)
	pagesCert, pagesKey := ca.issue(t, "pages", "pages-eu", []string{"Example Corp", "recsys:pages"}, false)
	noRoleCert, noRoleKey := ca.issue(t, "norole", "someone", []string{"Example Corp"}, false)
	other := newPKI(t, "another CA")
	strangerCert, strangerKey := other.issue(t, "stranger", "stranger", []string{"recsys:operator"}, false)

	r := start(t, func(c *daemon.Config) {
		c.TLSCert, c.TLSKey, c.ClientCA = serverCert, serverKey, filepath.Join(ca.dir, "ca.pem")
		c.HealthAddr = "127.0.0.1:0"
	})
	addr := r.d.Addr().String()
	type conn struct {
		token string
		files client.TLSFiles
	}
	call := func(t *testing.T, o conn) (codes.Code, codes.Code) {
		t.Helper()
		o.files.CAFile = filepath.Join(ca.dir, "ca.pem")
		opts := []client.Option{client.WithTLSFiles(o.files), client.WithRetries(0)}
		if o.token != "" {
			opts = append(opts, client.WithToken(o.token))
		}
		c, err := client.New(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, recErr := c.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 2})
		_, delErr := c.Events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "u"})
		return status.Code(recErr), status.Code(delErr)
	}
	for _, tc := range []struct {
		name        string
		o           conn
		rec, delete codes.Code
	}{
		{"pages certificate", conn{files: client.TLSFiles{CertFile: pagesCert, KeyFile: pagesKey}}, codes.OK, codes.PermissionDenied},
		{"certificate without a recsys role", conn{files: client.TLSFiles{CertFile: noRoleCert, KeyFile: noRoleKey}}, codes.PermissionDenied, codes.PermissionDenied},
		{"operator token over TLS", conn{token: operatorToken}, codes.OK, codes.OK},
		{"token decides over the certificate", conn{token: operatorToken, files: client.TLSFiles{CertFile: pagesCert, KeyFile: pagesKey}}, codes.OK, codes.OK},
		{"wrong token with a good certificate", conn{token: "nope", files: client.TLSFiles{CertFile: pagesCert, KeyFile: pagesKey}}, codes.Unauthenticated, codes.Unauthenticated},
		{"neither", conn{}, codes.Unauthenticated, codes.Unauthenticated},
		// The server's certificate request names only its CA, so a Go client
		// does not even offer a certificate from another CA: no credentials.
		{"certificate of another CA", conn{files: client.TLSFiles{CertFile: strangerCert, KeyFile: strangerKey}}, codes.Unauthenticated, codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, del := call(t, tc.o)
			if rec != tc.rec || del != tc.delete {
				t.Errorf("Recommend %v, DeleteUser %v; want %v, %v", rec, del, tc.rec, tc.delete)
			}
		})
	}

	// Plaintext on the TLS port fails; the health port answers plaintext.
	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext health on the TLS port: %v, want Unavailable", err)
	}
	hconn, err := grpc.NewClient(r.d.HealthAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hconn.Close()
	eventually(t, "health SERVING on the health port", func() bool {
		res, err := healthpb.NewHealthClient(hconn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	if _, err := recsysv1.NewRecommendationServiceClient(hconn).Recommend(context.Background(),
		&recsysv1.RecommendRequest{UserId: "u", Count: 1}); status.Code(err) != codes.Unimplemented {
		t.Errorf("Recommend on the health port: %v, want Unimplemented", err)
	}
}

// TestTokensFileIsReloaded rotates a token by rewriting the tokens file, as
// Kubernetes does with a mounted Secret: the new token starts working and
// the old one stops, without a restart; a broken file keeps the last good
// tokens.
func TestTokensFileIsReloaded(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	op := access.TokenLine(access.Operator, "test-operator", operatorToken)
	write(op + "\n" + access.TokenLine(access.Pages, "pages", "old-token") + "\n")
	r := start(t, func(c *daemon.Config) {
		c.Tokens, c.TokensFile, c.TokensReload = "", file, 20*time.Millisecond
	})
	plain, err := grpc.NewClient(r.d.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rec := recsysv1.NewRecommendationServiceClient(plain)
	code := func(token string) codes.Code {
		_, err := rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: "u", Count: 1},
			grpc.PerRPCCredentials(client.BearerToken{Token: token}))
		return status.Code(err)
	}
	if c := code("old-token"); c != codes.OK {
		t.Fatalf("old token: %v", c)
	}
	write(op + "\n" + access.TokenLine(access.Pages, "pages", "new-token") + "\n")
	eventually(t, "the new token to work", func() bool { return code("new-token") == codes.OK })
	if c := code("old-token"); c != codes.Unauthenticated {
		t.Errorf("old token after rotation: %v, want Unauthenticated", c)
	}
	write("this is not a tokens file\n")
	// The reloader polls every 20 ms; a few polls later the good tokens
	// still work. (Observable only as "nothing changed", so poll a while.)
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if c := code("new-token"); c != codes.OK {
			t.Fatalf("after a broken tokens file: %v, want the last good tokens kept", c)
		}
		time.Sleep(20 * time.Millisecond) // polling across several reload intervals
	}
}
