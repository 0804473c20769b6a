package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"
)

// Durations are strings in both formats; bad flags are usage errors.
func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	log, err := NewLogger(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("drained", "took", 1500*time.Millisecond)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if got := m["took"]; got != "1.5s" {
		t.Errorf("json duration %v (%T), want \"1.5s\"", got, got)
	}
	b.Reset()
	if log, err = NewLogger(&b, "debug", "text"); err != nil {
		t.Fatal(err)
	}
	log.Debug("drained", "took", 2*time.Minute)
	if !strings.Contains(b.String(), "took=2m0s") {
		t.Errorf("text line %q lacks took=2m0s", b.String())
	}
	for _, bad := range [][2]string{{"loud", "json"}, {"info", "xml"}} {
		if _, err := NewLogger(&b, bad[0], bad[1]); ExitCode(err) != ExitUsage {
			t.Errorf("NewLogger(%q, %q) = %v, want a usage error", bad[0], bad[1], err)
		}
	}
	if ExitCode(flag.ErrHelp) != ExitOK {
		t.Error("--help is not exit 0")
	}
}

// On a terminal a log line written while the bar is drawn clears the bar
// first, so the two never share a line; the next update draws the bar
// again. Off a terminal progress is whole lines and logs pass through.
func TestLogLinesAndTheBar(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	var tty bytes.Buffer
	p := newProgress(&tty, "iterations", 10, true, now)
	p.Update(3, "fit")
	if _, err := p.LogWriter().Write([]byte("level=INFO msg=iteration\n")); err != nil {
		t.Fatal(err)
	}
	p.Update(4, "fit")
	out := tty.String()
	// The bar, then a carriage return and erase-line before the log line.
	i := strings.Index(out, "level=INFO")
	if i < 0 || !strings.HasSuffix(out[:i], "\r\x1b[K") {
		t.Errorf("the log line does not start on a cleared line: %q", out)
	}
	if !strings.Contains(out[i:], "4/10 iterations") {
		t.Errorf("the bar is not drawn again after the log line: %q", out)
	}

	var pipe bytes.Buffer
	p = newProgress(&pipe, "iterations", 10, false, now)
	if p.LogWriter() != &pipe {
		t.Error("off a terminal the log writer is not the destination itself")
	}
}

// Off a terminal progress is whole lines, at most one per Interval, each
// with done/total, the rate and the time left, and a last line from Done.
func TestProgressLinesWhenPiped(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	var pipe bytes.Buffer
	p := newProgress(&pipe, "events", 100, false, now)
	for done := int64(10); done <= 80; done += 10 {
		clock = clock.Add(2 * time.Second) // 5 events/s
		p.Update(done, "")
	}
	clock = clock.Add(time.Second)
	p.Done(90, "2 rejected")
	got := strings.Split(strings.TrimSuffix(pipe.String(), "\n"), "\n")
	want := []string{
		// 6 s (the first update at least Interval after the start), then 6 s after that line
		"30/100 events (30%), 5/s, ETA 14s, elapsed 6s",
		"60/100 events (60%), 5/s, ETA 8s, elapsed 12s",
		"90/100 events (90%), 5/s, ETA 2s, elapsed 17s, 2 rejected",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("piped progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.ContainsAny(pipe.String(), "\r\x1b") {
		t.Errorf("piped progress has terminal control characters: %q", pipe.String())
	}
}
