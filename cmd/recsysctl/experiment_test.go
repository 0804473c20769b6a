package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The experiment and report commands against a real recsysd; outputs are
// read as JSON (protojson varies its spacing).
func TestExperimentCommands(t *testing.T) {
	addr := startDaemon(t)
	decode := func(r result) map[string]any {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		return m
	}
	m := decode(recsysctl(nil, "experiment", "create", "home-1", "--placement", "home",
		"--arms", "control:1:popular,diverse:1:cap=2:explore=0.1:cold=trending", "--addr", addr))
	xp, _ := m["experiment"].(map[string]any)
	arms, _ := xp["arms"].([]any)
	if xp["name"] != "home-1" || xp["controlArm"] != "control" || len(arms) != 2 {
		t.Fatalf("created %v", m)
	}
	if d, _ := arms[1].(map[string]any); d["maxPerCategory"] != float64(2) || d["exploreShare"] != 0.1 || d["coldSource"] != "SOURCE_TRENDING" {
		t.Errorf("arm diverse: %v", d)
	}
	decode(recsysctl(nil, "experiment", "update", "home-1", "--arms", "control:1:popular,diverse:3", "--addr", addr))
	list := decode(recsysctl(nil, "experiment", "list", "--addr", addr))
	if l, _ := list["experiments"].([]any); len(l) != 1 {
		t.Errorf("list: %v", list)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	rep := decode(recsysctl(nil, "report", "--json", "--from", today, "--experiment", "home-1", "--addr", addr))
	if a, _ := rep["arms"].([]any); len(a) != 2 {
		t.Errorf("report arms: %v", rep)
	}
	if r := recsysctl(nil, "report", "--from", today, "--experiment", "home-1", "--addr", addr); r.code != 0 ||
		!strings.Contains(r.stdout, "Revenue per user") || !strings.Contains(r.stdout, "→ arm diverse vs control: no significant difference") {
		t.Errorf("report as tables: exit %d, stdout\n%s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	stopped := decode(recsysctl(nil, "experiment", "stop", "home-1", "--addr", addr))
	if s, _ := stopped["experiment"].(map[string]any); s["state"] != "EXPERIMENT_STATE_STOPPED" {
		t.Errorf("stop: %v", stopped)
	}
	for _, bad := range [][]string{
		{"experiment", "create", "x", "--placement", "home", "--addr", addr},                            // no arms
		{"experiment", "create", "x", "--placement", "home", "--arms", "a:1:shiny,b:1", "--addr", addr}, // unknown option
		{"experiment", "create", "x", "--arms", "a:1,b:1", "--addr", addr},                              // no placement: the server says which field
		{"report", "--from", "yesterday", "--addr", addr},
	} {
		if r := recsysctl(nil, bad...); r.code == 0 {
			t.Errorf("%v: exit 0, want an error", bad)
		}
	}
}
