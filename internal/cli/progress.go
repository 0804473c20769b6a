package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress reports how far a long job (an import, training) has come. On a
// terminal it redraws one bar in place; anywhere else (a pipe, a file, a
// CI log) it writes a whole line at most every Interval, and always a last
// one from Done, so a log holds a readable history instead of hundreds of
// carriage-return separated updates on one line. Lines say done/total,
// rate and the estimated time left when the total is known.
type Progress struct {
	w     io.Writer
	what  string // "events", "items"
	total int64  // 0: unknown
	tty   bool
	// Interval between lines when not on a terminal (default 5s).
	Interval time.Duration
	now      func() time.Time
	start    time.Time
	last     time.Time
	drawn    bool       // a bar is on the terminal's current line
	mu       sync.Mutex // Update, Done, Clear and LogWriter's writes
}

// NewProgress reports progress of counting what (a plural noun) up to
// total (0 if unknown) on w, as a bar if w is a terminal.
func NewProgress(w io.Writer, what string, total int64) *Progress {
	return newProgress(w, what, total, IsTerminal(w), time.Now)
}

func newProgress(w io.Writer, what string, total int64, tty bool, now func() time.Time) *Progress {
	t := now()
	return &Progress{w: w, what: what, total: total, tty: tty, Interval: 5 * time.Second, now: now, start: t, last: t}
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update reports done units so far; detail is appended ("3 rejected").
func (p *Progress) Update(done int64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.tty {
		if now.Sub(p.last) < 100*time.Millisecond && p.drawn {
			return
		}
		p.last = now
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.line(done, detail, now, true))
		p.drawn = true
		return
	}
	if now.Sub(p.last) < p.Interval {
		return
	}
	p.last = now
	fmt.Fprintln(p.w, p.line(done, detail, now, false))
}

// Done writes the final state and ends the line.
func (p *Progress) Done(done int64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.line(done, detail, now, true))
		p.drawn = false
		return
	}
	fmt.Fprintln(p.w, p.line(done, detail, now, false))
}

// Clear removes the bar from a terminal line so that a log line can be
// written there; the next Update draws it again. Off a terminal it does
// nothing: lines never share a line.
func (p *Progress) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *Progress) clear() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *Progress) line(done int64, detail string, now time.Time, bar bool) string {
	elapsed := now.Sub(p.start)
	var b strings.Builder
	if bar && p.total > 0 {
		const width = 24
		n := min(int(done*width/p.total), width)
		b.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
	}
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d %s (%.0f%%)", done, p.total, p.what, 100*float64(done)/float64(p.total))
	} else {
		fmt.Fprintf(&b, "%d %s", done, p.what)
	}
	if sec := elapsed.Seconds(); sec > 0 {
		rate := float64(done) / sec
		fmt.Fprintf(&b, ", %.0f/s", rate)
		if p.total > 0 && rate > 0 && done < p.total {
			eta := time.Duration(float64(p.total-done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
		}
	}
	fmt.Fprintf(&b, ", elapsed %s", elapsed.Round(100*time.Millisecond))
	if detail != "" {
		b.WriteString(", " + detail)
	}
	return b.String()
}

// Reset starts counting again from now, for the next run of the same work
// (another fit of as many iterations): the rate and ETA start afresh.
func (p *Progress) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	p.start, p.last = t, t
}
