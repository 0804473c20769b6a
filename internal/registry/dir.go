package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
)

// Dir is a registry in a local directory, for a single server or a setup
// without Redis, and for inspecting artifacts:
//
//	<dir>/<version>.rsm   the artifact (mf.Write), readable by mf.Read as is
//	<dir>/<version>.json  the version's metadata, written after the artifact
//	<dir>/<version>.report.html  the HTML evaluation report (report.go), if stored
//	<dir>/<version>.pin   the end of the version's pin lease (Pin), if pinned
//	<dir>/CURRENT         the current version's name and a newline
//	<dir>/.tmp-*          files being written; renamed into place when complete
//
// Every file is written to a temporary file, fsynced, renamed over its name
// and the directory fsynced, so a reader sees the old file or the new one,
// never a part, and a crash at any step leaves CURRENT naming a complete
// version. A version exists when its .json does; the leftovers of a crashed
// publish (temporary files, an .rsm without .json) older than OrphanTTL are
// deleted by the next publish.
//
// One process should publish to a directory at a time (the trainer's cron
// job); within a process, a Dir is safe for concurrent use.
type Dir struct {
	path string
	opts Options
	mu   sync.Mutex // serializes flips and pruning within this process

	// hook, when set (by tests), runs between the steps of a publish; an
	// error stops the publish there, as a crash would.
	hook func(step string) error
	// random feeds version names; nil means crypto/rand (tests force clashes).
	random io.Reader
}

var _ Source = (*Dir)(nil)

const (
	currentFile = "CURRENT"
	tempPrefix  = ".tmp-"
	artifactExt = ".rsm"
	metadataExt = ".json"
	pinExt      = ".pin"
	filePerm    = 0o644 // CreateTemp makes 0600; artifacts are meant to be readable
)

// NewDir returns a registry in the directory path, creating it if needed.
func NewDir(path string, opts Options) (*Dir, error) {
	if path == "" {
		return nil, errors.New("directory registry: empty path")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("directory registry: %w", err)
	}
	return &Dir{path: path, opts: o}, nil
}

func (d *Dir) file(name string) string { return filepath.Join(d.path, name) }

func (d *Dir) step(s string) error {
	if d.hook == nil {
		return nil
	}
	return d.hook(s)
}

// Publish stores m as a new version and makes it current: Stage, then
// Activate. Watchers pick it up at their next poll.
func (d *Dir) Publish(ctx context.Context, m *mf.Model) (Version, error) {
	return publish(ctx, d, m)
}

// Stage stores m as a new, complete version without making it current.
func (d *Dir) Stage(ctx context.Context, m *mf.Model) (Version, error) {
	v, err := d.stage(ctx, m)
	if err != nil {
		return Version{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prune(ctx)
	return v, nil
}

func (d *Dir) stage(ctx context.Context, m *mf.Model) (Version, error) {
	if m == nil {
		return Version{}, errors.New("publish: nil model")
	}
	if err := ctx.Err(); err != nil {
		return Version{}, fmt.Errorf("publish: %w", err)
	}
	name, err := d.freeName()
	if err != nil {
		return Version{}, fmt.Errorf("publish: %w", err)
	}
	m = m.WithVersion(name)
	var sum verifier
	err = d.writeFile(name+artifactExt, func(w io.Writer) error {
		return mf.Write(io.MultiWriter(w, &sum), m)
	})
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", name, err)
	}
	if err := d.step(stepChunksWritten); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", name, err)
	}
	rec := record{Info: m.Info(), Size: sum.n, CRC32C: formatCRC(sum.crc), PublishedAt: d.opts.Now().UTC()}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: encode metadata: %w", name, err)
	}
	err = d.writeFile(name+metadataExt, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: write metadata: %w", name, err)
	}
	return rec.version(""), nil
}

// freeName returns a new version name that no file in the directory uses:
// a clash (24 random bits within a second) would overwrite another version.
func (d *Dir) freeName() (string, error) {
	for range 5 {
		name, err := newVersion(d.opts.Now(), d.random)
		if err != nil {
			return "", err
		}
		_, errA := os.Lstat(d.file(name + artifactExt))
		_, errM := os.Lstat(d.file(name + metadataExt))
		if errors.Is(errA, fs.ErrNotExist) && errors.Is(errM, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", errors.New("no free version name after 5 attempts")
}

// writeFile replaces the file name in the directory with what fill writes,
// atomically and durably: temporary file, fsync, rename, fsync of the
// directory (without which the rename itself may not survive a power cut).
func (d *Dir) writeFile(name string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(d.path, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; the error that matters is err
			_ = os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(filePerm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, d.file(name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return d.syncDir()
}

func (d *Dir) syncDir() error {
	f, err := os.Open(d.path)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync directory: %w", err)
	}
	return f.Close()
}

// Activate makes a complete version current (publishing it, or rolling back
// to a kept one). A version without metadata is refused with
// ErrUnknownVersion, one whose artifact file is gone with mf.ErrCorrupt.
func (d *Dir) Activate(ctx context.Context, version string) (Version, error) {
	if err := checkVersion(version); err != nil {
		return Version{}, fmt.Errorf("activate: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Version{}, fmt.Errorf("activate %s: %w", version, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, err := d.record(version)
	if err != nil {
		return Version{}, fmt.Errorf("activate %s: %w", version, err)
	}
	if _, err := os.Stat(d.file(version + artifactExt)); err != nil {
		return Version{}, fmt.Errorf("activate %s: %w: artifact: %v", version, mf.ErrCorrupt, err)
	}
	err = d.writeFile(currentFile, func(w io.Writer) error {
		_, err := io.WriteString(w, version+"\n")
		return err
	})
	if err != nil {
		return Version{}, fmt.Errorf("activate %s: %w", version, err)
	}
	d.prune(ctx)
	return rec.version(version), nil
}

// Current returns the current version, or "" when none was published.
func (d *Dir) Current(context.Context) (string, error) {
	b, err := os.ReadFile(d.file(currentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("current model version: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if err := checkVersion(v); err != nil {
		return "", fmt.Errorf("current model version: %s: %w", d.file(currentFile), err)
	}
	return v, nil
}

// List returns the complete versions, newest first, the current one marked.
func (d *Dir) List(ctx context.Context) ([]Version, error) {
	recs, err := d.records()
	if err != nil {
		return nil, fmt.Errorf("list model versions: %w", err)
	}
	cur, err := d.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("list model versions: %w", err)
	}
	out := make([]Version, len(recs))
	for i, r := range recs {
		out[i] = r.version(cur)
	}
	return out, nil
}

// records reads the metadata of every version, newest first.
func (d *Dir) records() ([]record, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var recs []record
	for _, e := range entries {
		v, ok := strings.CutSuffix(e.Name(), metadataExt)
		if !ok || checkVersion(v) != nil || !e.Type().IsRegular() {
			continue
		}
		r, err := d.record(v)
		if errors.Is(err, ErrUnknownVersion) {
			continue // pruned since ReadDir
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if !a.PublishedAt.Equal(b.PublishedAt) {
			return a.PublishedAt.After(b.PublishedAt)
		}
		return a.Info.Version > b.Info.Version
	})
	return recs, nil
}

func (d *Dir) record(version string) (record, error) {
	b, err := os.ReadFile(d.file(version + metadataExt))
	if errors.Is(err, fs.ErrNotExist) {
		return record{}, ErrUnknownVersion
	}
	if err != nil {
		return record{}, fmt.Errorf("read metadata: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("%w: metadata of version %s: %v", mf.ErrCorrupt, version, err)
	}
	if err := r.check(version); err != nil {
		return record{}, err
	}
	return r, nil
}

// Load reads a version and builds its model, verifying the artifact against
// the version's metadata (size, CRC-32C) and its own checksum (mf.Read).
// Damage is an error wrapping mf.ErrCorrupt (or mf.ErrInvalid for an intact
// artifact of a model that cannot serve); a version that is not complete in
// the registry, ErrUnknownVersion.
func (d *Dir) Load(ctx context.Context, version string) (*mf.Model, error) {
	if err := checkVersion(version); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	rec, err := d.record(version)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	f, err := os.Open(d.file(version + artifactExt))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w: artifact: %v", version, mf.ErrCorrupt, err)
	}
	defer func() { _ = f.Close() }() // read-only: a failed close loses nothing
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	if st.Size() != rec.Size {
		return nil, fmt.Errorf("load model %s: %w: file has %d bytes, metadata says %d", version, mf.ErrCorrupt, st.Size(), rec.Size)
	}
	var sum verifier
	m, err := mf.Read(io.TeeReader(ctxReader{ctx, f}, &sum))
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr // mf.Read reports any read error as corruption
		}
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	if err := sum.check(m, rec); err != nil {
		return nil, fmt.Errorf("load model %s: %w", version, err)
	}
	return m, nil
}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Pin keeps a complete version from being pruned until the lease ends (a
// later end extends it; an earlier one changes nothing), however many newer
// versions are published: servers pin the versions running experiment arms
// serve, as with the Redis registry. The lease is kept in <version>.pin, so
// the process that prunes (the trainer's publish) sees the pins of the
// process that serves; a pin goes with its version. An unknown version is
// ErrUnknownVersion.
//
// Within a process Pin and pruning are serialized. Across processes, a first
// Pin that races the publish pruning that very version may report success
// for a version that is then gone (the Redis registry does both in one
// script); renewing an existing pin does not race, and the serving side
// finds the version missing at its next load and keeps serving the current
// model.
func (d *Dir) Pin(ctx context.Context, version string, until time.Time) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pin model version %s: %w", version, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.record(version); err != nil {
		return fmt.Errorf("pin model version %s: %w", version, err)
	}
	cur, err := d.pinnedUntil(version)
	if err != nil {
		return fmt.Errorf("pin model version %s: %w", version, err)
	}
	if !cur.Before(until) {
		return nil
	}
	err = d.writeFile(version+pinExt, func(w io.Writer) error {
		_, err := io.WriteString(w, until.UTC().Format(time.RFC3339Nano)+"\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("pin model version %s: %w", version, err)
	}
	// Another process may have pruned the version meanwhile: then the pin
	// pins nothing.
	if _, err := d.record(version); err != nil {
		_ = os.Remove(d.file(version + pinExt)) // if this fails, the next prune sweeps the orphan
		return fmt.Errorf("pin model version %s: %w", version, err)
	}
	return nil
}

// pinnedUntil returns the end of a version's pin lease, the zero time when
// it is not pinned. A pin file that does not parse (damaged) counts as
// unpinned: the next Pin rewrites it.
func (d *Dir) pinnedUntil(version string) (time.Time, error) {
	b, err := os.ReadFile(d.file(version + pinExt))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, nil
	}
	return t, nil
}

// prune deletes the versions beyond the newest Keep (never the current one,
// nor one pinned (Pin) until after now) and the leftovers of interrupted
// publishes older than OrphanTTL. Failures
// are logged: the publish it follows has succeeded and the next one prunes
// again. The caller holds d.mu.
func (d *Dir) prune(ctx context.Context) {
	if err := d.pruneErr(ctx); err != nil {
		d.opts.Logger.WarnContext(ctx, "prune old model versions", "dir", d.path, "err", err)
	}
}

func (d *Dir) pruneErr(ctx context.Context) error {
	recs, err := d.records()
	if err != nil {
		return err
	}
	cur, err := d.Current(ctx)
	if err != nil {
		return err
	}
	var errs []error
	now := d.opts.Now()
	for i, r := range recs {
		v := r.Info.Version
		if i < d.opts.Keep || v == cur {
			continue
		}
		pin, err := d.pinnedUntil(v)
		if err != nil {
			errs = append(errs, err)
			continue // unknown: keep it
		}
		if pin.After(now) {
			continue
		}
		// Metadata first: without it the version no longer exists, and an
		// artifact left by a crash here is an orphan removed later.
		if err := os.Remove(d.file(v + metadataExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		for _, ext := range []string{artifactExt, reportExt, pinExt} {
			if err := os.Remove(d.file(v + ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}

	entries, err := os.ReadDir(d.path)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	cutoff := d.opts.Now().Add(-d.opts.OrphanTTL)
	for _, e := range entries {
		name := e.Name()
		v, versioned := strings.CutSuffix(name, artifactExt)
		if !versioned {
			v, versioned = strings.CutSuffix(name, pinExt) // a pin whose version is gone
		}
		orphan := strings.HasPrefix(name, tempPrefix)
		if versioned && checkVersion(v) == nil {
			_, err := os.Stat(d.file(v + metadataExt))
			orphan = errors.Is(err, fs.ErrNotExist)
		}
		if !orphan {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue // gone already, or possibly still being written
		}
		if err := os.Remove(d.file(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
