package access

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Tokens is an immutable set of hashed bearer tokens, each naming a caller.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash   [sha256.Size]byte
	caller Caller
}

// validName is what a caller name may look like: it shows up in logs and
// metrics, so no spaces or separators.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ParseTokens reads token entries, one per line:
//
//	ROLES:NAME:SHA256HEX
//
// ROLES is one or more role names joined by "+" (pages, events, push,
// operator), NAME the caller's name (letters, digits, '.', '_', '-'; up to
// 63), SHA256HEX the lowercase or uppercase hex SHA-256 of the token (see
// HashToken). Blank lines and lines starting with '#' are skipped; commas
// separate entries too, so a list fits in one environment variable. Names
// and hashes must be unique. source names the input in errors.
func ParseTokens(r io.Reader, source string) (*Tokens, error) {
	t := &Tokens{}
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		for _, raw := range strings.Split(sc.Text(), ",") {
			s := strings.TrimSpace(raw)
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			e, err := parseTokenEntry(s)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", source, line, err)
			}
			if names[e.caller.Name] {
				return nil, fmt.Errorf("%s line %d: caller name %q given twice", source, line, e.caller.Name)
			}
			if hashes[e.hash] {
				return nil, fmt.Errorf("%s line %d: the token of %q is also another caller's", source, line, e.caller.Name)
			}
			names[e.caller.Name], hashes[e.hash] = true, true
			t.entries = append(t.entries, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	return t, nil
}

func parseTokenEntry(s string) (tokenEntry, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return tokenEntry{}, fmt.Errorf("want ROLES:NAME:SHA256HEX, got %d fields", len(parts))
	}
	roles, err := ParseRoles(parts[0])
	if err != nil {
		return tokenEntry{}, err
	}
	if !validName.MatchString(parts[1]) {
		return tokenEntry{}, fmt.Errorf("caller name %q: want 1-63 letters, digits, '.', '_' or '-'", parts[1])
	}
	var e tokenEntry
	if len(parts[2]) != 2*sha256.Size {
		return tokenEntry{}, fmt.Errorf("caller %q: the hash must be %d hex digits (the SHA-256 of the token, not the token), got %d characters",
			parts[1], 2*sha256.Size, len(parts[2]))
	}
	if _, err := hex.Decode(e.hash[:], []byte(parts[2])); err != nil {
		return tokenEntry{}, fmt.Errorf("caller %q: hash: %w", parts[1], err)
	}
	e.caller = Caller{Name: parts[1], Roles: roles, Via: "token"}
	return e, nil
}

// LoadTokensFile reads a tokens file (see ParseTokens).
func LoadTokensFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	return ParseTokens(f, path)
}

// Len is the number of configured tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Lookup returns the caller whose token this is. It hashes the token and
// compares the hash with every entry in constant time, so neither the
// position of a match nor a near miss shows in the time taken.
func (t *Tokens) Lookup(token string) (Caller, bool) {
	if t == nil || token == "" {
		return Caller{}, false
	}
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		eq := subtle.ConstantTimeCompare(h[:], t.entries[i].hash[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Caller{}, false
	}
	return t.entries[found].caller, true
}

// HashToken returns the hex SHA-256 of a token, as the tokens file holds it.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewToken returns a fresh random token: 32 bytes from crypto/rand, base64url
// without padding. Tokens are stored as unsalted SHA-256 hashes, which is
// safe only for random tokens like these (a guessable token's hash can be
// reversed by trying candidates).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return "rst_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// TokenLine returns the tokens-file line for a token.
func TokenLine(roles Roles, name, token string) string {
	return roles.String() + ":" + name + ":" + HashToken(token)
}
