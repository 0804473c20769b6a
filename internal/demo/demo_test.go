package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The README's first command must keep working: a small demo runs end to
// end on the embedded store (which is what the demo is for) and tells the
// whole story.
func TestDemoRunsEndToEnd(t *testing.T) {
	var out, logs bytes.Buffer
	err := Run(context.Background(), Config{Users: 400, Items: 200, Events: 15000, Seed: 7, Factors: 16, Iterations: 6,
		GRPCAddr: "127.0.0.1:0"}, &out, &logs)
	if err != nil {
		t.Fatalf("demo: %v\n%s\nserver warnings:\n%s", err, out.String(), logs.String())
	}
	for _, want := range []string{"recsysd serving", "loaded through the gRPC API", "published", "hot-swapped to",
		"recommended for", "(personalized,", "the very next answer", "bought together with", "model  ndcg@10", "popularity", "itemknn", "gate: ",
		"A/B experiment demo-home", "Conversion (users with an attributed purchase", "→ arm model "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if testing.Verbose() {
		t.Log(out.String())
	}
}
