package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
	if !strings.Contains(joined, "like") || !strings.Contains(joined, "events.csv:5:") || !strings.Contains(joined, "timestamp") {
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
	st, err = ingest.ImportCatalog(ctx, c, bad, 5*time.Second, io.Discard)
	if err != nil || st.Rejected != 1 || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "bad.csv:2: price") {
		t.Errorf("bad price: got %+v, %v; want one rejected row naming file, line and field", st, err)
	}
}

// TestImportsSkipBadRows: hostile rows anywhere in a file (invalid UTF-8, a
// 1 MB id, a value the server refuses, a category the client cannot encode)
// are each skipped and reported with their own line, every good row around
// them is sent, and the report stays small.
func TestImportsSkipBadRows(t *testing.T) {
	c := startDaemon(t)
	ctx := context.Background()
	huge := strings.Repeat("u", 1<<20)
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	var ev strings.Builder
	ev.WriteString("user_id,item_id,event_type,timestamp\n")
	badLines := map[int]string{701: "u1,i271\xff,view,1761991200", 900: huge + ",i1,view,1761991200", 1200: "u1,i1,view," + future}
	const rows = 1500
	for line := 2; line < rows+2; line++ {
		if row, ok := badLines[line]; ok {
			ev.WriteString(row + "\n")
			continue
		}
		fmt.Fprintf(&ev, "u%d,i%d,view,%d\n", line%50, line%30, 1761991200+line)
	}
	st, err := ingest.ImportEvents(ctx, c, writeFile(t, "events.csv", ev.String()), "", 5*time.Second, io.Discard)
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, st)
	}
	if st.Rows != rows || st.Sent != rows-3 || st.Accepted != rows-3 || st.Rejected != 3 {
		t.Fatalf("got %+v, want %d rows, %d sent and accepted, 3 rejected", st, rows, rows-3)
	}
	for line := range badLines {
		if !slices.ContainsFunc(st.Errors, func(e string) bool { return strings.Contains(e, fmt.Sprintf("events.csv:%d:", line)) }) {
			t.Errorf("no error names line %d: %q", line, st.Errors)
		}
	}
	checkSmall(t, st)

	cat := "item_id,category\nc1,shoes\nc2,bad\xffcat\n" + huge + ",hats\nc3,hats\n\"c4,x\nc5,shoes\n"
	st, err = ingest.ImportCatalog(ctx, c, writeFile(t, "catalog.csv", cat), 5*time.Second, io.Discard)
	if err != nil {
		t.Fatalf("catalog import: %v (%+v)", err, st)
	}
	if st.Sent != 2 || st.Accepted != 2 || st.Rejected != 3 {
		t.Fatalf("got %+v, want c1 and c3 sent, 3 rejected", st)
	}
	for _, want := range []string{"catalog.csv:3: item \"c2\" cannot be encoded (client-side", "catalog.csv:4: item_id", "catalog.csv:6:"} {
		if !slices.ContainsFunc(st.Errors, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no error contains %q: %q", want, st.Errors)
		}
	}
	checkSmall(t, st)
}

// checkSmall fails when the printed summary echoes a long value whole.
func checkSmall(t *testing.T, st ingest.ImportStats) {
	t.Helper()
	var out strings.Builder
	if err := ingest.PrintStats(&out, st); err != nil {
		t.Fatal(err)
	}
	if out.Len() > 4<<10 {
		t.Errorf("summary of %d bytes: a value was echoed whole", out.Len())
	}
}
