package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/cli"
)

// The command line behaves like every recsys command's: --help lists the
// flags, the environment (RECSYS_* and OTEL_*) and the exit codes, and
// exits 0; --version prints the build; usage errors exit 2.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		wantStdout string
		wantStderr []string
		notStderr  []string
	}{
		{name: "help", args: []string{"--help"}, code: cli.ExitOK,
			wantStderr: []string{"usage: recsysd", "-grpc-addr", "RECSYS_REDIS_ADDR", "--redis-addr", "OTEL_EXPORTER_OTLP_ENDPOINT", "exit codes:"},
			notStderr:  []string{"RECSYS_VERSION"}},
		{name: "version", args: []string{"--version"}, code: cli.ExitOK, wantStdout: "recsysd "},
		{name: "unknown flag", args: []string{"--grpc-adr", ":1"}, code: cli.ExitUsage, wantStderr: []string{"flag provided but not defined"}},
		{name: "argument", args: []string{"serve"}, code: cli.ExitUsage, wantStderr: []string{"takes flags only"}},
		{name: "bad environment value", env: map[string]string{"RECSYS_PROFILE_BUDGET": "soon"}, code: cli.ExitUsage,
			wantStderr: []string{"RECSYS_PROFILE_BUDGET"}},
		{name: "bad log format", args: []string{"--log-format", "xml"}, code: cli.ExitUsage, wantStderr: []string{"--log-format"}},
		{name: "bad flag value", args: []string{"--coalesce-block-mib", "0"}, code: cli.ExitUsage, wantStderr: []string{"--coalesce-block-mib"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			if code := cli.Exit("recsysd", err, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d (err %v); stderr:\n%s", code, tc.code, err, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.wantStdout)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, w := range tc.notStderr {
				if strings.Contains(stderr.String(), w) {
					t.Errorf("stderr has %q", w)
				}
			}
		})
	}
}

// recsysd listens on the loopback interface unless told otherwise.
func TestListensOnLoopbackByDefault(t *testing.T) {
	cfg, _, err := parse(nil, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.GRPCAddr, "127.0.0.1:") || !strings.HasPrefix(cfg.MetricsAddr, "127.0.0.1:") || cfg.HTTPAddr != "" {
		t.Errorf("defaults: grpc %q, metrics %q, http %q; want 127.0.0.1 and HTTP off", cfg.GRPCAddr, cfg.MetricsAddr, cfg.HTTPAddr)
	}
}
