package cli

import (
	"io"
	"log/slog"
	"time"
)

// NewLogger is the logger of every recsys command, from its --log-level
// (debug, info, warn, error) and --log-format (json or text) flags. Both
// formats write durations as strings ("1.5s"; slog's JSON handler would
// write nanoseconds), so a log reads the same whichever format it is in.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationsAsStrings}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, Usagef("--log-format: want json or text, got %q", format)
}

func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().Round(time.Microsecond).String())
	}
	return a
}

// LogWriter returns the writer for log lines that share the terminal with
// p's bar: each write first clears the bar (the next Update draws it
// again below the line), so a log line and the bar never run together.
// Off a terminal it is p's writer itself: progress is whole lines there.
func (p *Progress) LogWriter() io.Writer {
	if !p.tty {
		return p.w
	}
	return logWriter{p}
}

type logWriter struct{ p *Progress }

func (l logWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.p.clear()
	return l.p.w.Write(b)
}
