// Command loadgen drives a running recsysd with an open-loop mix of
// Recommend, RecordEvents and SimilarItems calls at a fixed rate and reports
// achieved QPS, latency percentiles, errors by gRPC code and dropped calls
// (see internal/loadgen for how it measures).
//
//	RECSYS_TOKEN=... go run ./benchmarks/loadgen --addr 127.0.0.1:50051 --rate 500 --duration 60s \
//	    --mix recommend=70,events=25,similar=5 --users 5000 --items 2000
//
// Users and items are the ids `recsysctl generate` writes (u1.., i1..), so
// load a generated shop first. The caller's token (--token, default
// $RECSYS_TOKEN) needs the pages and events roles; --server-ca turns TLS on.
// SIGINT or SIGTERM stops the run early; the calls in flight finish and the
// final report covers the time measured. Flags and recorded runs:
// README.md ("Load generator") and benchmarks/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/loadgen"
)

func main() { os.Exit(cli.Exit("loadgen", cli.Main(run), os.Stderr)) }

func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	addr := fs.String("addr", "127.0.0.1:50051", "recsysd gRPC address")
	conns := fs.Int("conns", 1, "gRPC connections, used round-robin")
	mix := fs.String("mix", "recommend=70,events=25,similar=5", "share of each call: recommend, events, similar")
	asJSON := fs.Bool("json", false, "print reports as JSON lines instead of tables")
	fs.Float64Var(&cfg.Rate, "rate", 100, "calls per second (all kinds), open loop")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured run time")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "time before the measured part (calls made, not counted)")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 512, "calls outstanding at once; calls due beyond it are dropped and counted")
	fs.IntVar(&cfg.Users, "users", 1000, "user ids u1..uN (as recsysctl generate writes them)")
	fs.IntVar(&cfg.Items, "items", 500, "item ids i1..iN")
	fs.Float64Var(&cfg.UserSkew, "user-skew", 1, "Zipf exponent of user popularity (0: uniform)")
	fs.Float64Var(&cfg.ItemSkew, "item-skew", 1, "Zipf exponent of item popularity (0: uniform)")
	fs.IntVar(&cfg.EventsPerBatch, "events-per-batch", 10, "events per RecordEvents call")
	fs.IntVar(&cfg.Count, "count", 20, "items asked for per Recommend and SimilarItems")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed makes the same sequence of calls")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "deadline of each call")
	fs.DurationVar(&cfg.ReportEvery, "report-every", 10*time.Second, "interval report period (0: final report only)")
	token := fs.String("token", os.Getenv("RECSYS_TOKEN"), "bearer token (default $RECSYS_TOKEN); it needs the pages and events roles")
	var tlsFiles client.TLSFiles
	fs.StringVar(&tlsFiles.CAFile, "server-ca", "", "TLS: CA (PEM) of the server's certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Mix, err = loadgen.ParseMix(*mix); err != nil {
		return fmt.Errorf("--mix: %w", err)
	}
	if *conns < 1 {
		return fmt.Errorf("--conns must be >= 1, got %d", *conns)
	}

	// No retries and no default deadline: the generator counts every
	// failure and sets each call's deadline itself.
	connOpts := []client.Option{client.WithRetries(0), client.WithTimeout(0)}
	if *token != "" {
		connOpts = append(connOpts, client.WithToken(*token))
	}
	if tlsFiles.CAFile != "" {
		connOpts = append(connOpts, client.WithTLSFiles(tlsFiles))
	}
	dialOpts, err := client.DialOptions(connOpts...)
	if err != nil {
		return err
	}
	cs := make([]grpc.ClientConnInterface, *conns)
	for i := range cs { // each ClientConn is its own HTTP/2 connection
		c, err := grpc.NewClient(*addr, dialOpts...)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", *addr, err)
		}
		defer func() { _ = c.Close() }()
		c.Connect()
		cs[i] = c
	}

	emit := func(r loadgen.Report) error {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(r)
		}
		return loadgen.WriteText(stdout, r)
	}
	fmt.Fprintf(stderr, "loadgen: %s at %.0f/s for %v after %v warmup, mix %s, %d users (skew %v), %d items (skew %v), max %d in flight\n",
		*addr, cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Mix, cfg.Users, cfg.UserSkew, cfg.Items, cfg.ItemSkew, cfg.MaxInFlight)
	var printErr error
	final, err := loadgen.Run(ctx, cs, cfg, func(r loadgen.Report) {
		if perr := emit(r); perr != nil && printErr == nil {
			printErr = perr
		}
	})
	if err != nil {
		return err
	}
	if err := emit(final); err != nil {
		return err
	}
	return printErr
}
