package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/flagdoc"
	"github.com/recsys-dev/recsys/internal/trainjob"
)

// With no flag the job is trainjob.NewConfig(): the flags' defaults are the
// config's, written once.
func TestTrainDefaultsAreNewConfig(t *testing.T) {
	var o options
	fs, _ := trainFlags(&o, io.Discard)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if got, want := o.job, trainjob.NewConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if o.format != "auto" || o.logLevel != defaultLogLevel || o.logFormat != defaultLogFormat {
		t.Errorf("format %q, log %q %q", o.format, o.logLevel, o.logFormat)
	}
}

// A flag sets the config field it names.
func TestTrainFlagsSetTheConfig(t *testing.T) {
	var o options
	fs, _ := trainFlags(&o, io.Discard)
	if err := fs.Parse([]string{"--factors", "8", "--keep", "2", "--bought-cap", "7", "--weight-cart", "4",
		"--no-content", "--publish-redis=false", "--tolerance", "0.1", "--redis-timeout", "3s"}); err != nil {
		t.Fatal(err)
	}
	j := o.job
	if j.Retrain.Hyper.Factors != 8 || j.Keep != 2 || j.Retrain.CoPurchase.Cap != 7 || j.Retrain.Weighting.AddToCart != 4 ||
		!j.NoContent || j.PublishRedis || j.Retrain.Tolerance != 0.1 || j.RedisTimeout.String() != "3s" {
		t.Errorf("config %+v does not have what the flags set", j)
	}
}

// The bought-together flag table of docs/api.md names recsys-train's
// bought-* flags with their defaults.
func TestBoughtFlagTableDocumented(t *testing.T) {
	var o options
	all, _ := trainFlags(&o, io.Discard)
	bought := flag.NewFlagSet("bought", flag.ContinueOnError)
	all.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "bought-") {
			bought.Var(f.Value, f.Name, f.Usage)
		}
	})
	diffs, err := flagdoc.CompareFile("../../docs/api.md", "| recsys-train flag | default | meaning |", bought)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range diffs {
		t.Error("docs/api.md:", p)
	}
}

// names returns the names of the flags on fs.
func names(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

// only returns a flag set of the flags on fs that keep accepts.
func only(fs *flag.FlagSet, keep func(name string) bool) *flag.FlagSet {
	out := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if keep(f.Name) {
			out.Var(f.Value, f.Name, f.Usage)
		}
	})
	return out
}

// Every flag of every subcommand has one row, with its default, in one of
// docs/training.md's recsys-train tables: the shared flags in one, each
// layer's own in its own (the bought-together flags in docs/api.md, above).
func TestFlagTablesDocumented(t *testing.T) {
	var so options
	sharedFS := flag.NewFlagSet("shared", flag.ContinueOnError)
	so.register(sharedFS)
	shared := names(sharedFS)
	var ec evalCommand
	evalCmdFS := flag.NewFlagSet("eval and tune", flag.ContinueOnError)
	ec.register(evalCmdFS)
	evalCmd := names(evalCmdFS)

	var o options
	trainFS, _ := trainFlags(&o, io.Discard)
	var e evalFlags
	var tu tuneFlags
	for _, tc := range []struct {
		heading string
		fs      *flag.FlagSet
	}{
		{"### recsys-train flags", sharedFS},
		{"#### recsys-train (train) flags", only(trainFS, func(n string) bool { return !shared[n] && !strings.HasPrefix(n, "bought-") })},
		{"#### recsys-train eval and tune flags", only(evalCmdFS, func(n string) bool { return !shared[n] })},
		{"#### recsys-train eval flags", only(newEvalFlags(&e, io.Discard), func(n string) bool { return !evalCmd[n] })},
		{"#### recsys-train tune flags", only(newTuneFlags(&tu, io.Discard), func(n string) bool { return !evalCmd[n] })},
	} {
		diffs, err := flagdoc.CompareFile("../../docs/training.md", tc.heading, tc.fs)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range diffs {
			t.Errorf("docs/training.md %s: %s", tc.heading, p)
		}
	}
}
