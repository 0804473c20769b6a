package eval

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func sampleReport() *Report {
	return &Report{Split: "time-holdout last 1", Cases: 3, Models: []ModelResult{
		{Name: "als", Metrics: map[string]float64{"recall@20": 0.5, "ndcg@10": 0.25, "hr@10": 0.75, "ndcg@20": 0.3}},
		{Name: "popularity", Metrics: map[string]float64{"ndcg@10": 0.125}},
	}}
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"split":"time-holdout last 1","cases":3,"models":[` +
		`{"name":"als","ndcg@10":0.25,"hr@10":0.75,"ndcg@20":0.3,"recall@20":0.5},` +
		`{"name":"popularity","ndcg@10":0.125}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, sampleReport()) {
		t.Errorf("round trip gave %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"models":[{"name":"x","ndcg@10":"high"}]}`), &back); err == nil {
		t.Error("a non-numeric metric was accepted")
	}
}

func TestReportTable(t *testing.T) {
	var sb strings.Builder
	if err := sampleReport().WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(sb.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), sb.String())
	}
	if got := strings.Fields(lines[1]); !reflect.DeepEqual(got, []string{"model", "ndcg@10", "hr@10", "ndcg@20", "recall@20"}) {
		t.Errorf("header %v", got)
	}
	if got := strings.Fields(lines[3]); !reflect.DeepEqual(got, []string{"popularity", "0.1250", "-", "-", "-"}) {
		t.Errorf("popularity row %v", got)
	}
	if !strings.Contains(lines[0], "time-holdout last 1, 3 test users") {
		t.Errorf("title %q", lines[0])
	}
}
