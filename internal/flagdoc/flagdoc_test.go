package flagdoc

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const doc = `# x

### tool flags

Some words.

| flag | default | meaning |
|---|---|---|
| **Group** | | |
| ` + "`--addr`" + ` | ` + "`127.0.0.1:1`" + ` | where |
| ` + "`--ttl`, `--cap`" + ` | 4320h (180 days), 1,000 | bounds |
| ` + "`--a`, `--b`" + ` | empty | both empty |

## next
| ` + "`--not-in-table`" + ` | 1 | after the table |
`

func TestTable(t *testing.T) {
	rows, err := Table([]byte(doc), "### tool flags")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, strings.Join(r.Flags, "+")+"="+r.Defaults)
	}
	want := []string{"addr=`127.0.0.1:1`", "ttl+cap=4320h (180 days), 1,000", "a+b=empty"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := Table([]byte(doc), "### other flags"); err == nil {
		t.Error("a missing heading is not an error")
	}
}

func TestCompare(t *testing.T) {
	rows, err := Table([]byte(doc), "### tool flags")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags map[string]any // name -> default, on top of the documented ones; nil value: leave it out
		want  []string       // substrings of the problems, in order
	}{
		{"agree", nil, nil},
		{"undocumented flag", map[string]any{"new": false}, []string{"--new (default \"false\": ) is not documented"}},
		{"documented flag missing", map[string]any{"b": nil}, []string{"--b is documented but not a flag"}},
		{"wrong defaults", map[string]any{"addr": "127.0.0.1:2", "ttl": 24 * time.Hour},
			[]string{"--addr default is 127.0.0.1:2", "--ttl default is 24h0m0s"}},
		{"a flag that gets a default", map[string]any{"a": "x"}, []string{"--a default is x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defs := map[string]any{"addr": "127.0.0.1:1", "ttl": 180 * 24 * time.Hour, "cap": 1000, "a": "", "b": ""}
			for k, v := range tc.flags {
				defs[k] = v
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			for _, name := range []string{"addr", "ttl", "cap", "a", "b", "new"} {
				switch v := defs[name].(type) {
				case string:
					fs.String(name, v, "")
				case time.Duration:
					fs.Duration(name, v, "")
				case int:
					fs.Int(name, v, "")
				case bool:
					fs.Bool(name, v, "")
				}
			}
			got := Compare(fs, rows)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d problems like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCompareFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.md")
	md := "## flags\n\n| flag | default |\n|---|---|\n| `--a` | 3 |\n"
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("a", 4, "")
	got, err := CompareFile(path, "## flags", fs)
	if err != nil || len(got) != 1 || !strings.Contains(got[0], "a") {
		t.Errorf("got %q, %v; want the one wrong default", got, err)
	}
	if _, err := CompareFile(path, "## other", fs); err == nil {
		t.Error("a file without the table is not an error")
	}
}
