package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/ingest"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
)

type result struct {
	code           int
	stdout, stderr string
}

func recsysTrain(env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return result{exitCode(err, &errOut), out.String(), errOut.String()}
}

// Help pages, --version and usage errors, for the job and its subcommands.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		wantStdout string
		wantStderr []string
	}{
		{"help", []string{"--help"}, nil, exitOK, "", []string{"usage: recsys-train [flags]", "recsys-train eval", "RECSYS_REDIS_ADDR", "exit codes:", "3  recsys-train"}},
		{"eval help", []string{"eval", "-h"}, nil, exitOK, "", []string{"usage: recsys-train eval", "-split", "RECSYS_SPLIT", "exit codes:"}},
		{"tune help", []string{"tune", "--help"}, nil, exitOK, "", []string{"usage: recsys-train tune", "-trials", "exit codes:"}},
		{"version", []string{"--version"}, nil, exitOK, "recsys-train ", nil},
		{"unknown flag", []string{"--factor", "8"}, nil, exitUsage, "", []string{"flag provided but not defined: -factor"}},
		{"argument", []string{"eval", "data.csv"}, nil, exitUsage, "", []string{"unexpected arguments"}},
		{"bad environment value", []string{"--dry-run", "--input", "x.csv"}, map[string]string{"RECSYS_ITERATIONS": "many"}, exitUsage, "", []string{"RECSYS_ITERATIONS"}},
		{"bad log level", []string{"--dry-run", "--input", "x.csv", "--log-level", "loud"}, nil, exitUsage, "", []string{"--log-level"}},
		{"nothing to read", []string{"--dry-run"}, nil, exitUsage, "", []string{"--input"}},
		{"train subcommand help", []string{"train", "--help"}, nil, exitOK, "", []string{"usage: recsys-train [flags]", "-bought-ttl"}},
		{"single-dash version", []string{"-version"}, nil, exitOK, "recsys-train ", nil},
		{"nowhere to publish", []string{"--input", "x.csv"}, nil, exitUsage, "", []string{"nowhere to publish"}},
		{"bad format", []string{"--dry-run", "--input", "x.csv", "--format", "xml"}, nil, exitUsage, "", []string{"--format"}},
		{"bad Redis address", []string{"--dry-run", "--redis-addr", ","}, nil, exitUsage, "", []string{"--redis-addr"}},
		{"environment fills a flag", []string{"--dry-run"}, map[string]string{"RECSYS_INPUT": "missing.csv"}, 1, "", []string{"missing.csv"}},
		{"eval bad cut-offs", []string{"eval", "--input", "x.csv", "--k", "ten"}, nil, exitUsage, "", []string{"--k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := recsysTrain(tc.env, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.wantStdout) {
				t.Errorf("stdout %q lacks %q", r.stdout, tc.wantStdout)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
	if got := exitCode(fmt.Errorf("gate: %w", retrain.ErrRefused), &bytes.Buffer{}); got != exitRefused {
		t.Errorf("a refused model exits %d, want %d", got, exitRefused)
	}
}

// A run publishes the model with its HTML report to the registry (what
// GetModelReport serves); off a terminal, progress is log lines, never
// carriage returns.
func TestTrainStoresTheReport(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.csv")
	if _, err := ingest.Generate(context.Background(), synth.Config{Users: 300, Items: 200, Events: 12000, Seed: 3},
		events, "", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	models := filepath.Join(dir, "models")
	r := recsysTrain(nil, "--input", events, "--models-dir", models, "--tune-budget", "0", "--factors", "8",
		"--iterations", "4", "--skip-knn", "--log-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "\r") {
		t.Error("progress off a terminal has carriage returns")
	}
	reg, err := registry.NewDir(models, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := reg.Current(context.Background())
	if err != nil || v == "" {
		t.Fatalf("current version %q, %v", v, err)
	}
	html, err := reg.Report(context.Background(), v)
	if err != nil {
		t.Fatalf("report of %s: %v", v, err)
	}
	if !bytes.Contains(html, []byte("<svg")) || !bytes.Contains(html, []byte("Quality gate")) {
		t.Errorf("the stored report has no chart or no gate decision (%d bytes)", len(html))
	}
	if !bytes.Contains(html, []byte(`data-metric="loss"`)) || !bytes.Contains(html, []byte(`>holdout</text>`)) {
		t.Error("the stored report has no training loss chart with the holdout fit")
	}
	if !bytes.Contains(html, []byte("peak memory")) || !strings.Contains(r.stdout, "resources: peak memory") {
		t.Error("the report or the output does not give the job's peak memory")
	}
	if !bytes.Contains(html, []byte(`data-metric="activity"`)) || !bytes.Contains(html, []byte(`data-metric="popularity"`)) ||
		!bytes.Contains(html, []byte(`data-metric="scores"`)) {
		t.Error("the stored report lacks the activity, popularity or score chart")
	}
}

// Each tuning trial is logged on its own line, numbered, with the search's
// elapsed time and budget, durations written as durations.
func TestTraceLoggerNumbersTrialsAgainstTheBudget(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	trace := traceLogger(log, 10*time.Minute)
	trace(mf.TuningTrial{Bracket: 0, Rung: 0, Hyper: mf.Hyperparameters{Factors: 256}, Score: 0.1, Seconds: 1.5})
	trace(mf.TuningTrial{Bracket: 0, Rung: 1, Hyper: mf.Hyperparameters{Factors: 64}, Seconds: 0.25, Aborted: true})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per trial:\n%s", len(lines), buf.String())
	}
	for i, want := range [][]string{
		{"trial=1 ", "factors=256", "took=1.5s", "budget=10m0s", "elapsed="},
		{"trial=2 ", "factors=64", "took=250ms", "aborted=true", "budget=10m0s"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q: %s", i+1, w, lines[i])
			}
		}
	}
}

// eval --blend-ablation adds item neighbours alone and the blend's rows.
func TestEvalBlendAblationRows(t *testing.T) {
	events := filepath.Join(t.TempDir(), "events.csv")
	if _, err := ingest.Generate(context.Background(), synth.Config{Users: 200, Items: 100, Events: 6000, Seed: 4},
		events, "", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	r := recsysTrain(nil, "eval", "--input", events, "--factors", "8", "--iterations", "4", "--k", "10",
		"--blend-ablation", "--served=false", "--log-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, row := range []string{"itemneighbors", "mf+neighbors+transitions+recency"} {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("no %s row in:\n%s", row, r.stdout)
		}
	}
}
