package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/recsys-dev/recsys/internal/access"
)

// authenticator decides whether recsysd authenticates callers, and with
// what. Authentication is on as soon as tokens or a client CA are
// configured. Without either, a server on a real Redis refuses to start
// unless InsecureNoAuth says that running open is intended; the embedded
// demo store runs open (and the server logs loudly that it does).
func (c *Config) authenticator(embedded bool, log *slog.Logger) (*access.Authenticator, error) {
	if c.TokensFile != "" && c.Tokens != "" {
		return nil, errors.New("give --tokens-file or --tokens, not both")
	}
	var tokens *access.Tokens
	if c.TokensFile != "" {
		t, err := access.LoadTokensFile(c.TokensFile)
		if err != nil {
			return nil, err
		}
		tokens = t
	}
	if c.Tokens != "" {
		t, err := access.ParseTokens(strings.NewReader(c.Tokens), "--tokens")
		if err != nil {
			return nil, err
		}
		tokens = t
	}
	certs := c.ClientCA != ""
	on := tokens != nil || certs
	switch {
	case on && c.InsecureNoAuth:
		return nil, errors.New("--insecure-no-auth contradicts the tokens or client CA given")
	case on:
		if tokens.Len() == 0 && !certs {
			log.Warn("authentication is on but no token is configured: every call except health will be refused")
		}
		return access.NewAuthenticator(tokens, certs), nil
	case c.InsecureNoAuth:
		return nil, nil
	case embedded:
		log.Warn("DEMO MODE: the embedded store runs without authentication; never expose this server")
		return nil, nil
	}
	return nil, errors.New("no callers configured: give --tokens-file (or --tokens) and/or --client-ca, " +
		"or --insecure-no-auth to run without authentication on purpose")
}

// reloadTokens re-reads the tokens file every interval and swaps in a
// changed, valid one (Kubernetes updates a mounted Secret in place). A
// broken file is logged and the previous tokens stay.
func reloadTokens(ctx context.Context, path string, every time.Duration, a *access.Authenticator, log *slog.Logger) error {
	last, _ := os.ReadFile(path)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			log.Error("re-read tokens file, keeping the previous tokens", "path", path, "err", err)
			continue
		}
		if bytes.Equal(b, last) {
			continue
		}
		tk, err := access.ParseTokens(bytes.NewReader(b), path)
		if err != nil {
			log.Error("tokens file changed but is invalid, keeping the previous tokens", "err", err)
			continue
		}
		last = b
		a.SetTokens(tk)
		log.Info("tokens file reloaded", "path", path, "tokens", tk.Len())
	}
}

// serverTLS builds the TLS configuration of the gRPC port: the server's
// certificate (re-read when its files change, so a renewed certificate is
// served without a restart) and, with clientCA, verification of client
// certificates against it. Without requireClientCert a client may also come
// without a certificate and present a token instead.
func serverTLS(certFile, keyFile, clientCA string, requireClientCert bool) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		if clientCA != "" {
			return nil, errors.New("--client-ca needs --tls-cert and --tls-key (client certificates need TLS)")
		}
		if certFile != "" || keyFile != "" {
			return nil, errors.New("give both --tls-cert and --tls-key")
		}
		return nil, nil
	}
	kp := &keyPair{cert: certFile, key: keyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
		NextProtos:     []string{"h2"},
	}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate in it", clientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if requireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if requireClientCert {
		return nil, errors.New("--require-client-cert needs --client-ca")
	}
	return cfg, nil
}

// keyPair serves a certificate from files, reloading it when either file's
// modification time changes (checked at most every few seconds).
type keyPair struct {
	cert, key string

	mu      sync.Mutex
	cur     *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if k.cur != nil && now.Sub(k.checked) < 5*time.Second {
		return k.cur, nil
	}
	k.checked = now
	var stamp [2]time.Time
	for i, f := range []string{k.cert, k.key} {
		st, err := os.Stat(f)
		if err != nil {
			if k.cur != nil {
				return k.cur, nil // keep serving the loaded one
			}
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		stamp[i] = st.ModTime()
	}
	if k.cur != nil && stamp == k.stamp {
		return k.cur, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.cur != nil {
			return k.cur, nil // a half-written renewal: keep the old one
		}
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	k.cur, k.stamp = &c, stamp
	return k.cur, nil
}
