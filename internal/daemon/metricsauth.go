package daemon

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// readMetricsToken reads the bearer token /metrics asks for from path (its
// whole content, surrounding white space trimmed; a Kubernetes Secret
// mounted as a file). An empty file is an error: it would protect nothing.
func readMetricsToken(path string) ([sha256.Size]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("metrics token: %w", err)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		return [sha256.Size]byte{}, fmt.Errorf("metrics token file %s is empty", path)
	}
	return sha256.Sum256(tok), nil
}

// requireToken lets a request through only with the header
// "Authorization: Bearer <token>" whose SHA-256 is want, compared in
// constant time; anything else is 401 with a WWW-Authenticate challenge.
func requireToken(want [sha256.Size]byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need a bearer token (--metrics-token-file)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
