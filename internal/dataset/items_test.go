package dataset_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/dataset"
)

func TestReadItemsFile(t *testing.T) {
	dir := t.TempDir()
	ml := filepath.Join(dir, "u.item")
	// Latin-1 é (0xe9) in the title; genres Animation and Comedy.
	if err := os.WriteFile(ml, []byte("1|Caf\xe9 Story (1995)|01-Jan-1995||http://x|0|0|0|1|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	csvFile := filepath.Join(dir, "catalog.csv")
	if err := os.WriteFile(csvFile, []byte("item_id,category,price,available,brand\ni1,c1,12.5,true,acme\ni2,,,,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want map[string]content.Item
	}{
		{ml, map[string]content.Item{"1": {Category: "Animation", Title: "Café Story (1995)", Tags: []string{"Animation", "Comedy"}}}},
		{csvFile, map[string]content.Item{"i1": {Category: "c1", Price: 12.5, Brand: "acme"}, "i2": {}}},
	} {
		got := map[string]content.Item{}
		if err := dataset.ReadItemsFile(c.path, func(id string, it content.Item) error { got[id] = it; return nil }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", filepath.Base(c.path), got, c.want)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("id,category\n1,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dataset.ReadItemsFile(bad, func(string, content.Item) error { return nil }); err == nil {
		t.Error("a CSV without item_id was read")
	}
}
