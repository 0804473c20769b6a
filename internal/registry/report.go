package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/redis/go-redis/v9"
)

// ReportStore keeps the HTML evaluation report of a version beside it
// (implemented by *Redis and *Dir): recsys-train stores the report of every
// model it publishes, ModelService/GetModelReport reads it. A report goes
// when its version is pruned.
type ReportStore interface {
	// PutReport stores html as the report of a complete version
	// (ErrUnknownVersion otherwise), replacing any earlier one.
	PutReport(ctx context.Context, version string, html []byte) error
	// Report returns the report of version: ErrUnknownVersion when the
	// version is not kept, ErrNoReport when it has none.
	Report(ctx context.Context, version string) ([]byte, error)
}

var (
	_ ReportStore = (*Redis)(nil)
	_ ReportStore = (*Dir)(nil)
)

// ErrNoReport means a kept version has no report (it was published without
// one, or storing it failed after the publish).
var ErrNoReport = errors.New("no report stored with this version")

// MaxReportBytes bounds a stored report; reports of recsys-train are a few
// hundred kilobytes.
const MaxReportBytes = 8 << 20

func checkReport(version string, html []byte) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	if len(html) == 0 || len(html) > MaxReportBytes {
		return fmt.Errorf("report of %s: %d bytes, want 1..%d", version, len(html), MaxReportBytes)
	}
	return nil
}

func (r *Redis) reportKey(v string) string { return r.base + ":v:" + v + ":report" }

// putReportScript stores a report only while its version's meta exists, so
// a report never outlives a version pruned meanwhile.
var putReportScript = redis.NewScript(`
-- KEYS[1] meta, KEYS[2] report; ARGV[1] html
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
return 1
`)

// PutReport stores html as the report of version (key B:v:<version>:report).
func (r *Redis) PutReport(ctx context.Context, version string, html []byte) error {
	if err := checkReport(version, html); err != nil {
		return err
	}
	ok, err := putReportScript.Run(ctx, r.rdb, []string{r.metaKey(version), r.reportKey(version)}, html).Int()
	if err != nil {
		return fmt.Errorf("store report of %s: %w", version, err)
	}
	if ok == 0 {
		return fmt.Errorf("store report of %s: %w", version, ErrUnknownVersion)
	}
	return nil
}

// Report returns the report of version.
func (r *Redis) Report(ctx context.Context, version string) ([]byte, error) {
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	b, err := r.rdb.Get(ctx, r.reportKey(version)).Bytes()
	if errors.Is(err, redis.Nil) {
		n, err := r.rdb.Exists(ctx, r.metaKey(version)).Result()
		if err != nil {
			return nil, fmt.Errorf("report of %s: %w", version, err)
		}
		if n == 0 {
			return nil, ErrUnknownVersion
		}
		return nil, ErrNoReport
	}
	if err != nil {
		return nil, fmt.Errorf("report of %s: %w", version, err)
	}
	return b, nil
}

const reportExt = ".report.html"

// PutReport stores html as the report of version (<dir>/<version>.report.html).
func (d *Dir) PutReport(_ context.Context, version string, html []byte) error {
	if err := checkReport(version, html); err != nil {
		return err
	}
	d.mu.Lock() // not while this process prunes
	defer d.mu.Unlock()
	if _, err := d.record(version); err != nil {
		return fmt.Errorf("store report of %s: %w", version, err)
	}
	return d.writeFile(version+reportExt, func(w io.Writer) error {
		_, err := w.Write(html)
		return err
	})
}

// Report returns the report of version.
func (d *Dir) Report(_ context.Context, version string) ([]byte, error) {
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	if _, err := d.record(version); err != nil {
		return nil, err
	}
	f, err := os.Open(d.file(version + reportExt))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoReport
	}
	if err != nil {
		return nil, fmt.Errorf("report of %s: %w", version, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("report of %s: %w", version, err)
	}
	if len(b) > MaxReportBytes {
		return nil, fmt.Errorf("report of %s: larger than %d bytes", version, MaxReportBytes)
	}
	return b, nil
}
