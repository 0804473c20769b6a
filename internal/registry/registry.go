// Package registry publishes versioned model artifacts and keeps running
// servers on the current one.
//
// A registry holds complete, checksummed model artifacts (see mf.Write) under
// version names, and a pointer to the current version. Two backends share one
// small API: *Redis, the production path that every server of a deployment
// reads, and *Dir, a directory for single-server setups and for inspecting
// artifacts. Watch keeps a server's model current: it loads the current
// version off the request path and hands each newly built model to a callback
// that swaps the server's atomic pointer.
//
// Publishing is ordered so that a crash at any step leaves the previous model
// serving: the artifact is written first, then its metadata (the record that
// makes a version complete), and only then is the current pointer flipped in a
// single atomic step that refuses versions without metadata. Readers check the
// artifact's size and whole-file CRC-32C against the metadata and mf.Read
// checks the artifact's own checksum, so a damaged version is never applied.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
)

// ErrUnknownVersion means the named version is not a complete version of the
// registry: it was never published, its publish did not finish, it was
// pruned, or the name is malformed.
var ErrUnknownVersion = errors.New("unknown model version")

// Version describes one complete version held by a registry.
type Version struct {
	// Info is the model's header; Info.Version is the version's name.
	Info mf.Info
	// PublishedAt is when the version became complete (its metadata was
	// written), which is also the order List returns versions in.
	PublishedAt time.Time
	// Size is the artifact's length in bytes.
	Size int64
	// Checksum is the CRC-32C (Castagnoli) of the whole artifact.
	Checksum uint32
	// Current is true for the version servers should serve.
	Current bool
}

// Name is the version's name (Info.Version).
func (v Version) Name() string { return v.Info.Version }

// Defaults of Options.
const (
	DefaultKeep      = 5
	DefaultChunkSize = 4 << 20
	DefaultPrefix    = "recsys"
	DefaultOrphanTTL = time.Hour

	// MaxChunkSize keeps every chunk far below Redis's 512 MB string limit
	// and bounds what one GET has to buffer.
	MaxChunkSize = 256 << 20
	minChunkSize = 64
)

// Options configure a registry. The zero value means the defaults.
type Options struct {
	// Keep is how many versions are kept (the newest by publish time); older
	// ones are deleted after each publish. The current version is never
	// deleted, so after a rollback Keep+1 versions may be held. Default 5.
	Keep int
	// ChunkSize is the size of the Redis strings an artifact is split into.
	// Default 4 MiB, at most MaxChunkSize. Redis only.
	ChunkSize int
	// Prefix starts every Redis key. Default "recsys". Redis only.
	Prefix string
	// OrphanTTL bounds how long the leftovers of an interrupted publish stay:
	// in Redis it is the TTL of chunks until their version's metadata is
	// written (which removes it); in a directory, stray temporary files and
	// artifacts without metadata older than this are deleted by the next
	// publish. It must exceed the time one publish takes. Default 1 hour.
	OrphanTTL time.Duration
	// Now is the clock used for version names and publish times. Default
	// time.Now.
	Now func() time.Time
	// Logger receives the failures that do not fail a publish (pruning old
	// versions). Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.OrphanTTL == 0 {
		o.OrphanTTL = DefaultOrphanTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Keep < 1:
		return o, fmt.Errorf("registry options: keep must be >= 1, got %d", o.Keep)
	case o.ChunkSize < minChunkSize || o.ChunkSize > MaxChunkSize:
		return o, fmt.Errorf("registry options: chunk size must be %d..%d bytes, got %d", minChunkSize, MaxChunkSize, o.ChunkSize)
	case o.OrphanTTL < time.Millisecond:
		return o, fmt.Errorf("registry options: orphan TTL must be >= 1ms, got %v", o.OrphanTTL)
	}
	return o, nil
}

// versionLayout is the time part of a version name: sortable, second
// resolution, UTC, and safe in file names and Redis keys.
const versionLayout = "20060102T150405Z"

// newVersion names a version published at t: the UTC time followed by 6 hex
// digits from rnd (crypto/rand when nil), so names sort by time and two
// publishes in one second differ.
func newVersion(t time.Time, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [3]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("version name: %w", err)
	}
	return t.UTC().Format(versionLayout) + "-" + hex.EncodeToString(b[:]), nil
}

// maxVersionLen bounds version names; ours are 23 bytes.
const maxVersionLen = 64

// checkVersion rejects names that no registry can hold. Names become file
// names and key parts, so only [0-9A-Za-z_-] is allowed: no path separators,
// no "..", and no dots, so "<version>.rsm" splits back unambiguously.
func checkVersion(v string) error {
	if v == "" || len(v) > maxVersionLen {
		return fmt.Errorf("%w: malformed name %q", ErrUnknownVersion, v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: malformed name %q", ErrUnknownVersion, v)
		}
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verifier counts and checksums the bytes of an artifact as they are read, so
// a load can compare them with the version's metadata after mf.Read is done.
type verifier struct {
	n   int64
	crc uint32
}

func (v *verifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	v.crc = crc32.Update(v.crc, castagnoli, p)
	return len(p), nil
}

// check compares what was read with the version's metadata and the loaded
// model with the version it was loaded as.
func (v *verifier) check(m *mf.Model, r record) error {
	sum, _ := parseCRC(r.CRC32C) // record.check has vetted it
	switch {
	case v.n != r.Size:
		return fmt.Errorf("%w: read %d bytes, metadata says %d", mf.ErrCorrupt, v.n, r.Size)
	case v.crc != sum:
		return fmt.Errorf("%w: artifact CRC-32C %08x, metadata says %08x", mf.ErrCorrupt, v.crc, sum)
	case m.Version() != r.Info.Version:
		return fmt.Errorf("%w: artifact is of version %q", mf.ErrCorrupt, m.Version())
	}
	return nil
}

// record is the metadata of a complete version. It is written after the
// artifact, so its presence is what makes a version complete, and it carries
// what a reader needs to verify the artifact before building the model.
type record struct {
	Info        mf.Info   `json:"info"`
	Size        int64     `json:"size"`
	CRC32C      string    `json:"crc32c"` // 8 hex digits
	PublishedAt time.Time `json:"published_at"`
}

func (r record) version(current string) Version {
	sum, _ := parseCRC(r.CRC32C)
	return Version{Info: r.Info, PublishedAt: r.PublishedAt, Size: r.Size, Checksum: sum, Current: r.Info.Version == current}
}

// check rejects metadata that cannot describe the version it is stored under.
func (r record) check(version string) error {
	if r.Info.Version != version {
		return fmt.Errorf("%w: metadata of version %s names version %q", mf.ErrCorrupt, version, r.Info.Version)
	}
	if r.Size <= 0 {
		return fmt.Errorf("%w: metadata of version %s gives size %d", mf.ErrCorrupt, version, r.Size)
	}
	if _, err := parseCRC(r.CRC32C); err != nil {
		return fmt.Errorf("%w: metadata of version %s: %v", mf.ErrCorrupt, version, err)
	}
	return nil
}

func formatCRC(sum uint32) string { return fmt.Sprintf("%08x", sum) }

func parseCRC(s string) (uint32, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("crc32c %q is not 8 hex digits", s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return 0, fmt.Errorf("crc32c %q is not 8 hex digits", s)
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// stager is what publish needs of a registry (Dir, Redis).
type stager interface {
	stage(ctx context.Context, m *mf.Model) (Version, error)
	step(s string) error
	Activate(ctx context.Context, version string) (Version, error)
}

// publish is the Publish of every registry: stage m as a new version, then
// activate it (the test hook runs between the two).
func publish(ctx context.Context, r stager, m *mf.Model) (Version, error) {
	v, err := r.stage(ctx, m)
	if err != nil {
		return Version{}, err
	}
	if err := r.step(stepStaged); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", v.Name(), err)
	}
	return r.Activate(ctx, v.Name())
}
