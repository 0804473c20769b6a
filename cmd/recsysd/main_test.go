package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/flagdoc"
)

// TestFlagTableDocumented keeps the recsysd flag table (docs/operations.md) and the flags
// in step: names and defaults.
func TestFlagTableDocumented(t *testing.T) {
	o := defaultOptions()
	diffs, err := flagdoc.CompareFile("../../docs/operations.md", "### recsysd flags", newFlagSet(&o, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range diffs {
		t.Error("docs/operations.md:", p)
	}
}

func TestParse(t *testing.T) {
	noEnv := func(string) string { return "" }
	t.Run("defaults are daemon.NewConfig's", func(t *testing.T) {
		got, lo, err := parse(nil, noEnv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		want := daemon.NewConfig()
		// What parse computes from its own flags.
		want.RateLimits = got.RateLimits
		want.DeadlineCaps = got.DeadlineCaps
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
		if lo != (logOptions{level: defaultLogLevel, format: defaultLogFormat}) {
			t.Errorf("log options %+v", lo)
		}
		if len(got.DeadlineCaps) != 0 || len(got.RateLimits) == 0 {
			t.Errorf("deadline caps %v, rate limits %v: want none and the built-in ones", got.DeadlineCaps, got.RateLimits)
		}
	})
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(c daemon.Config) bool
		wantErr string
	}{
		{"flag", []string{"--drain-timeout", "3s"}, nil, func(c daemon.Config) bool { return c.DrainTimeout == 3*time.Second }, ""},
		{"env fills", nil, map[string]string{"RECSYS_REDIS_ADDR": "r:1", "RECSYS_WEIGHT_CART": "4"},
			func(c daemon.Config) bool { return c.RedisAddr == "r:1" && c.Weighting.AddToCart == 4 }, ""},
		{"flag wins over env", []string{"--prefix", "a"}, map[string]string{"RECSYS_PREFIX": "b"}, func(c daemon.Config) bool { return c.Prefix == "a" }, ""},
		{"index for every model", []string{"--index-min-items", "0"}, nil, func(c daemon.Config) bool { return c.IndexMinItems == -1 }, ""},
		{"coalesce MiB", []string{"--coalesce-block-mib", "2"}, nil, func(c daemon.Config) bool { return c.Coalesce.BlockBytes == 2<<20 }, ""},
		{"cors origins", []string{"--http-cors-origins", " a , ,b"}, nil,
			func(c daemon.Config) bool { return reflect.DeepEqual(c.HTTPCORSOrigins, []string{"a", "b"}) }, ""},
		{"deadline caps", []string{"--deadline-caps", "Recommend=300ms"}, nil,
			func(c daemon.Config) bool { return c.DeadlineCaps["Recommend"] == 300*time.Millisecond }, ""},
		{"negative index probe", []string{"--index-probe", "-1"}, nil, nil, "--index-min-items and --index-probe"},
		{"zero coalesce MiB", []string{"--coalesce-block-mib", "0"}, nil, nil, "--coalesce-block-mib"},
		{"bad rate limits", []string{"--rate-limits", "pages"}, nil, nil, "--rate-limits"},
		{"bad deadline caps", []string{"--deadline-caps", "Recommend"}, nil, nil, "--deadline-caps"},
		{"bad env", nil, map[string]string{"RECSYS_USER_TTL": "long"}, nil, "RECSYS_USER_TTL"},
		{"unknown flag", []string{"--no-such-flag"}, nil, nil, "no-such-flag"},
		{"positional argument", []string{"serve"}, nil, nil, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := parse(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config %+v does not have what %q sets", c, tc.args)
			}
		})
	}
}

func TestRunRefusesBadFlagsBeforeStarting(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--cold-source", "random", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", ""}, "cold source"},
	} {
		err := run(context.Background(), tc.args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("run(%q) = %v, want an error naming %s", tc.args, err, tc.wantErr)
		}
	}
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(--help) = %v, want flag.ErrHelp", err)
	}
}
