package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// startDaemon runs a recsysd on the test Redis (authentication off) and
// returns its address.
func startDaemon(t *testing.T) string {
	t.Helper()
	rdb := redistest.Client(t)
	d, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", RedisAddr: redistest.Addr(), Prefix: redistest.Prefix(t, rdb),
		InsecureNoAuth: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return d.Addr().String()
}

type result struct {
	code           int
	stdout, stderr string
}

func recsysctl(env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	code := cli.Exit("recsysctl", err, &errOut)
	return result{code, out.String(), errOut.String()}
}

// Commands run against a real recsysd, with connection flags before or
// after the command, or from RECSYS_* variables.
func TestCommandsAgainstRecsysd(t *testing.T) {
	addr := startDaemon(t)
	events := filepath.Join(t.TempDir(), "events.csv")
	if err := os.WriteFile(events, []byte("user_id,item_id,event_type,timestamp\n"+
		"u1,i1,view,2026-11-01T10:00:00Z\nu2,i1,purchase,2026-11-01T10:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	boosts := filepath.Join(t.TempDir(), "boosts.json")
	if err := os.WriteFile(boosts, []byte(`{"rules":[{"name":"high margin","attribute":"margin","min":0.3,"add":0.2}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // in stdout
	}{
		{"flags before", nil, []string{"--addr", addr, "recommend", "u1", "--count", "3"}, `"source"`},
		{"connection flag after the command", nil, []string{"recommend", "u1", "--addr", addr}, `"source"`},
		{"flags between arguments", nil, []string{"bought-together", "i1", "--addr", addr, "i2", "--count", "2"}, `"source"`},
		{"address from the environment", map[string]string{"RECSYS_ADDR": addr}, []string{"model", "get"}, "{"},
		{"flag wins over the environment", map[string]string{"RECSYS_ADDR": "127.0.0.1:1"}, []string{"--addr", addr, "categories", "list"}, "{"},
		{"import", nil, []string{"events", "import", events, "--addr", addr}, `"accepted": 2`},
		{"declare an attribute", nil, []string{"attributes", "declare", "margin:number", "--addr", addr}, `"declared"`}, // protojson varies its spacing
		{"boost rules from a file", nil, []string{"boosts", "set", boosts, "--addr", addr}, `"ruleCount"`},
		{"boost rules back", nil, []string{"boosts", "get", "--addr", addr}, `"high margin"`},
		{"push as JSON lines", nil, []string{"push", "--users", "u1,u2", "--addr", addr}, `"userId":"u1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := recsysctl(tc.env, tc.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
	// --placement reaches the server: a placement it refuses is named.
	for _, cmd := range []string{"similar", "bought-together"} {
		r := recsysctl(nil, cmd, "i1", "--placement", strings.Repeat("p", 257), "--addr", addr)
		if r.code == 0 || !strings.Contains(r.stderr, "placement:") {
			t.Errorf("%s --placement (too long): exit %d, stderr %q; want an error naming placement", cmd, r.code, r.stderr)
		}
	}
	r := recsysctl(nil, "push", "--users", "u1,u2", "--addr", addr)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("push line %q is not one JSON object: %v", line, err)
		}
	}
}

// Usage: help pages, exit codes, errors that say what to do.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantStderr []string
		wantStdout string
	}{
		{"help", []string{"--help"}, 0, []string{"events import FILE", "model activate VERSION", "RECSYS_TOKEN", "RECSYS_ADDR", "exit codes:"}, ""},
		{"command help is not a file name", []string{"events", "import", "--help"}, 0,
			[]string{"usage: recsysctl events import FILE", "--server-ca", "RECSYS_TOKEN", "exit codes:"}, ""},
		{"help of a command with flags", []string{"recommend", "-h"}, 0, []string{"-count", "-include-purchased", "RECSYS_ADDR"}, ""},
		{"group", []string{"model"}, cli.ExitUsage, []string{"model get", "model list", "model activate VERSION", "which one"}, ""},
		{"group help", []string{"blocklist", "--help"}, 0, []string{"blocklist add"}, ""},
		{"unknown command", []string{"recomend", "u1"}, cli.ExitUsage, []string{`unknown command "recomend"`, "commands:"}, ""},
		{"unknown subcommand", []string{"model", "delete"}, cli.ExitUsage, []string{`unknown command "model delete"`}, ""},
		{"missing argument", []string{"recommend"}, cli.ExitUsage, []string{"want 1 argument", "usage: recsysctl recommend USER"}, ""},
		{"extra argument", []string{"profile", "u1", "u2"}, cli.ExitUsage, []string{"want 1 argument"}, ""},
		{"unknown flag", []string{"similar", "i1", "--cuont", "3"}, cli.ExitUsage, []string{"flag provided but not defined: -cuont"}, ""},
		{"bad environment value", []string{"model", "get"}, cli.ExitUsage, nil, ""},
		{"no command", nil, cli.ExitUsage, []string{"no command given", "commands:"}, ""},
		{"version", []string{"--version"}, 0, nil, "recsysctl "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.name == "bad environment value" {
				env["RECSYS_TIMEOUT"] = "soon"
			}
			r := recsysctl(env, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if !strings.Contains(r.stdout, tc.wantStdout) {
				t.Errorf("stdout %q lacks %q", r.stdout, tc.wantStdout)
			}
		})
	}
}

// Rejected rows end the import with exit code 4 unless --allow-rejects; the
// summary is printed either way, and progress is whole lines with a total.
func TestImportRejects(t *testing.T) {
	addr := startDaemon(t)
	path := filepath.Join(t.TempDir(), "events.csv")
	if err := os.WriteFile(path, []byte("user_id,item_id,event_type,timestamp\n"+
		"u1,i1,view,2026-11-01T10:00:00Z\nu1,i2,like,2026-11-01T10:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := recsysctl(nil, "events", "import", path, "--addr", addr)
	if r.code != cli.ExitRejected || !strings.Contains(r.stdout, `"rejected": 1`) || !strings.Contains(r.stderr, "1 of 2 rows rejected") {
		t.Errorf("exit %d, stdout %s, stderr %s; want 4, the summary and the count", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "2/2 events") || strings.Contains(r.stderr, "\r") {
		t.Errorf("progress %q: want whole lines with the total", r.stderr)
	}
	if r := recsysctl(nil, "events", "import", "--allow-rejects", path, "--addr", addr, "--format", "csv"); r.code != 0 {
		t.Errorf("--allow-rejects: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := recsysctl(nil, "events", "import", path, "--addr", addr, "--format", "xml"); r.code != cli.ExitUsage {
		t.Errorf("--format xml: exit %d, want 2", r.code)
	}
}

// `recsysctl --help` lists every command of the table with its summary, and
// every command has its own help page (exit 0, its usage line), so a command
// added to the table is reachable and documented by construction.
func TestHelpListsEveryCommand(t *testing.T) {
	help := recsysctl(nil, "--help")
	if help.code != 0 {
		t.Fatalf("--help: exit %d:\n%s", help.code, help.stderr)
	}
	for _, c := range commands {
		use := strings.TrimSpace(c.name + " " + c.args)
		if !strings.Contains(help.stderr, "  "+use+" ") || !strings.Contains(help.stderr, c.summary) {
			t.Errorf("--help does not list %q (%s):\n%s", use, c.summary, help.stderr)
		}
		t.Run(c.name, func(t *testing.T) {
			r := recsysctl(nil, append(strings.Fields(c.name), "--help")...)
			if r.code != 0 {
				t.Errorf("%s --help: exit %d:\n%s", c.name, r.code, r.stderr)
			}
			if want := "usage: recsysctl " + c.name + " "; !strings.HasPrefix(r.stderr, want) {
				t.Errorf("%s --help starts %q, want %q", c.name, firstLine(r.stderr), want)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
