package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/ingest"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func startDaemon(t *testing.T) *client.Client {
	t.Helper()
	rdb := redistest.Client(t)
	d, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", RedisAddr: redistest.Addr(), Prefix: redistest.Prefix(t, rdb), InsecureNoAuth: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	c, err := client.New(d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad rows and events the server refuses are counted and reported, the rest
// is stored, and importing the same file again changes nothing.
func TestImportEvents(t *testing.T) {
	c := startDaemon(t)
	ctx := context.Background()
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	path := writeFile(t, "events.csv", "user_id,item_id,event_type,timestamp\n"+
		"u1,i1,view,2026-11-01T10:00:00Z\n"+
		"u1,i2,purchase,1761991200\n"+
		"u1,i3,like,2026-11-01T10:00:00Z\n"+ // unknown type: the reader rejects it
		"u2,i1,cart,"+future+"\n"+ // in the future: the server rejects it
		"u2,i2,2.5,2026-11-01T11:00:00Z\n")
	st, err := ingest.ImportEvents(ctx, c, path, "", 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 5 || st.Sent != 3 || st.Accepted != 3 || st.Rejected != 2 || len(st.Errors) != 2 {
		t.Fatalf("got %+v, want 5 rows, 3 sent and accepted, 2 rejected with reasons", st)
	}
	joined := strings.Join(st.Errors, "\n")
	if !strings.Contains(joined, "like") || !strings.Contains(joined, "events[") || !strings.Contains(joined, "timestamp") {
		t.Errorf("rejection reasons %q do not name the row and the field", joined)
	}
	again, err := ingest.ImportEvents(ctx, c, path, "", 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if again.Accepted != 0 || again.Duplicates != 3 {
		t.Errorf("re-import: got %+v, want 0 accepted, 3 duplicates", again)
	}
	p, err := c.Events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u2"})
	if err != nil {
		t.Fatal(err)
	}
	if items := p.GetProfile().GetItems(); len(items) != 1 || items[0].GetItemId() != "i2" {
		t.Errorf("u2's profile %v, want only i2 (the future cart was rejected)", items)
	}
}

func TestImportCatalog(t *testing.T) {
	c := startDaemon(t)
	ctx := context.Background()
	path := writeFile(t, "catalog.csv", "item_id,category,price,available,created_at\n"+
		"i1,shoes,19.90,true,2026-01-01T00:00:00Z\n"+
		"i2,hats,,false,\n"+
		"i3,,5,,1767225600\n")
	st, err := ingest.ImportCatalog(ctx, c, path, 5*time.Second, io.Discard)
	if err != nil || st.Accepted != 3 {
		t.Fatalf("got %+v, %v; want 3 items", st, err)
	}
	res, err := c.Catalog.GetItems(ctx, &recsysv1.GetItemsRequest{ItemIds: []string{"i1", "i2", "i3"}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.GetItems()
	if len(got) != 3 || got[0].GetPrice() != 19.9 || got[0].GetCategory() != "shoes" || got[1].GetAvailable() ||
		!got[2].GetAvailable() || got[2].GetCreatedAt().AsTime().Year() != 2026 {
		t.Errorf("got %v", got)
	}
	bad := writeFile(t, "bad.csv", "item_id,price\ni1,cheap\n")
	if _, err := ingest.ImportCatalog(ctx, c, bad, 5*time.Second, io.Discard); err == nil || !strings.Contains(err.Error(), "bad.csv:2: price") {
		t.Errorf("bad price: got %v, want an error naming file, line and field", err)
	}
}
