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
