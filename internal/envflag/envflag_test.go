package envflag

import (
	"flag"
	"testing"
)

func TestFill(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantN   int
		wantErr bool
	}{
		{"default", nil, nil, ":1", 3, false},
		{"env fills", nil, map[string]string{"X_GRPC_ADDR": ":2", "X_COUNT": "7"}, ":2", 7, false},
		{"flag wins over env", []string{"--grpc-addr", ":3"}, map[string]string{"X_GRPC_ADDR": ":2"}, ":3", 3, false},
		{"bad env value", nil, map[string]string{"X_COUNT": "many"}, ":1", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			addr := fs.String("grpc-addr", ":1", "")
			n := fs.Int("count", 3, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := Fill(fs, "X", func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if *addr != tc.want || *n != tc.wantN {
				t.Errorf("got %q %d, want %q %d", *addr, *n, tc.want, tc.wantN)
			}
		})
	}
}
