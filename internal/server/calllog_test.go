package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log lines of finished calls of method.
func (l *lockedBuffer) lines(t *testing.T, method string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "finished call" && m["grpc.method"] == method {
			out = append(out, m)
		}
	}
	return out
}

// The line of a finished call names the caller and the recommendation id;
// a successful call is logged at DEBUG, a failed one at INFO or above.
func TestCallLogLines(t *testing.T) {
	var logs lockedBuffer
	e := newEnvWith(t, envOptions{model: true, server: func(c *server.Config, d *server.Deps) {
		c.Auth = access.NewAuthenticator(testTokens(t), false)
		d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	ctx := context.Background()
	res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 3}, as("tok-pages"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{Count: 3}, as("tok-pages")); err == nil {
		t.Fatal("Recommend without a user succeeded")
	}
	if _, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 3}, as("tok-wrong")); err == nil {
		t.Fatal("Recommend with a wrong token succeeded")
	}
	got := logs.lines(t, "Recommend")
	want := []struct {
		level, code, caller, recID string
	}{
		{"DEBUG", "OK", "pages", res.GetRecommendationId()},
		{"INFO", "InvalidArgument", "pages", ""},
		{"INFO", "Unauthenticated", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d finished-call lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		str := func(k string) string { s, _ := g[k].(string); return s }
		if str("level") != w.level || str("grpc.code") != w.code || str("caller") != w.caller || str("recommendation_id") != w.recID {
			t.Errorf("line %d: level %q code %q caller %q recommendation_id %q; want %q %q %q %q",
				i, str("level"), str("grpc.code"), str("caller"), str("recommendation_id"), w.level, w.code, w.caller, w.recID)
		}
	}
	if res.GetRecommendationId() == "" {
		t.Error("the answer has no recommendation id")
	}
}
