// Command pushmem measures recsysd's memory with many slow BatchRecommend
// streams (issue 13's target: 150 push callers, each holding a stream that
// reads one message per second, on a 100K × 64 model). It publishes a
// generated model to Redis under a fresh prefix, starts the given recsysd
// binary as its own process (so its RSS is its own), records events for
// the users, opens one stream per caller (each its own token), reads one
// message per second from each for --duration, and samples recsysd's RSS
// (/proc/<pid>/status) and its push budget's bytes in flight (/metrics)
// every second. It prints a Markdown row and the JSON of the result.
//
//	go build -o /tmp/recsysd ./cmd/recsysd && go run ./benchmarks/pushmem --recsysd /tmp/recsysd
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/benchmarks/internal/benchredis"
	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

type options struct {
	recsysd, redisAddr      string
	items, factors, users   int
	streams, usersPerStream int
	count                   int
	duration                time.Duration
	budgetMiB, workers      int
	eventsPerUser           int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushmem:", err)
		os.Exit(1)
	}
}

// Result is what one run measured.
type Result struct {
	Items, Factors, Users, Streams, Count int
	DurationS                             float64
	BudgetMiB, Workers                    int
	BaselineRSSMB                         float64 // before the streams
	PeakRSSMB                             float64 // sampled while they ran
	HWMMB                                 float64 // the process's VmHWM at the end
	PeakInFlightMB                        float64 // recsys_push_bytes_in_flight, sampled
	Answers                               int64
	Failed                                int64 // streams refused or ended by an error before the end
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pushmem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.recsysd, "recsysd", "", "the recsysd binary to measure (required)")
	fs.StringVar(&o.redisAddr, "redis-addr", "", "Redis to use (a fresh key prefix, deleted after); empty: start a redis-server of its own")
	fs.IntVar(&o.items, "items", 100_000, "model items")
	fs.IntVar(&o.factors, "factors", 64, "model factors")
	fs.IntVar(&o.users, "users", 20_000, "users with events")
	fs.IntVar(&o.eventsPerUser, "events-per-user", 20, "views per user")
	fs.IntVar(&o.streams, "streams", 150, "push callers, one stream each")
	fs.IntVar(&o.usersPerStream, "users-per-stream", 10_000, "users per BatchRecommend")
	fs.IntVar(&o.count, "count", 20, "items per user")
	fs.DurationVar(&o.duration, "duration", time.Minute, "how long the streams are read (one message per second each)")
	fs.IntVar(&o.budgetMiB, "push-memory-budget", 256, "recsysd --push-memory-budget (MiB)")
	fs.IntVar(&o.workers, "push-workers", 1, "recsysd --push-workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.recsysd == "" {
		return errors.New("--recsysd is required")
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", a...) }

	if o.redisAddr == "" {
		stopRedis, addr, err := benchredis.Start(ctx, "pushmem")
		if err != nil {
			return err
		}
		defer stopRedis()
		o.redisAddr = addr
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer func() { _ = rdb.Close() }()
	prefix := fmt.Sprintf("pushmem%d", os.Getpid())
	defer func() {
		if err := deletePrefix(context.WithoutCancel(ctx), rdb, prefix); err != nil {
			logf("delete %s keys: %v", prefix, err)
		}
	}()
	m, err := generateModel(o)
	if err != nil {
		return err
	}
	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		return err
	}
	if _, err := reg.Publish(ctx, m); err != nil {
		return fmt.Errorf("publish model: %w", err)
	}
	logf("model of %d × %d published under %s", m.NumItems(), m.Factors(), prefix)
	m = nil

	// Tokens: one push caller per stream, one operator for the events.
	dir, err := os.MkdirTemp("", "pushmem")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	var lines []string
	tokens := make([]string, o.streams+1)
	for i := range tokens {
		if tokens[i], err = access.NewToken(); err != nil {
			return err
		}
		roles, name := access.Push, "caller-"+strconv.Itoa(i)
		if i == o.streams {
			roles, name = access.Operator, "operator"
		}
		lines = append(lines, access.TokenLine(roles, name, tokens[i]))
	}
	tokensFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokensFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, o.recsysd, "--grpc-addr", grpcAddr, "--metrics-addr", metricsAddr,
		"--redis-addr", o.redisAddr, "--prefix", prefix, "--tokens-file", tokensFile, "--model-poll", "1s", "--redis-timeout", "5s",
		"--rate-limits", "pages=0,events=0,push=0,operator=0", "--log-level", "warn", "--log-format", "text",
		"--push-memory-budget", strconv.Itoa(o.budgetMiB), "--push-workers", strconv.Itoa(o.workers))
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start recsysd: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	op := grpc.PerRPCCredentials(client.BearerToken{Token: tokens[o.streams]})
	if err := waitModel(ctx, conn, op); err != nil {
		return err
	}
	if err := recordEvents(ctx, conn, op, o); err != nil {
		return err
	}
	logf("events of %d users recorded", o.users)
	baseline, _, err := rss(pid)
	if err != nil {
		return err
	}

	res := Result{Items: o.items, Factors: o.factors, Users: o.users, Streams: o.streams, Count: o.count,
		DurationS: o.duration.Seconds(), BudgetMiB: o.budgetMiB, Workers: o.workers, BaselineRSSMB: mb(baseline)}
	sctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var answers, failed atomic.Int64
	var wg sync.WaitGroup
	rc := recsysv1.NewRecommendationServiceClient(conn)
	for s := range o.streams {
		ids := make([]string, o.usersPerStream)
		for i := range ids {
			ids[i] = synth.UserID((s*o.usersPerStream + i) % o.users)
		}
		wg.Go(func() {
			st, err := rc.BatchRecommend(sctx, &recsysv1.BatchRecommendRequest{UserIds: ids, Count: int32(o.count)},
				grpc.PerRPCCredentials(client.BearerToken{Token: tokens[s]}))
			if err != nil {
				failed.Add(1)
				return
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if _, err := st.Recv(); err != nil {
					if sctx.Err() == nil {
						failed.Add(1)
						logf("stream %d: %v", s, err)
					}
					return
				}
				answers.Add(1)
				select {
				case <-tick.C:
				case <-sctx.Done():
					return
				}
			}
		})
	}
	var peak, inFlight int64
	url := "http://" + metricsAddr + "/metrics"
	for t := time.NewTicker(time.Second); sctx.Err() == nil; {
		select {
		case <-t.C:
		case <-sctx.Done():
		}
		if r, _, err := rss(pid); err == nil {
			peak = max(peak, r)
		}
		if b, err := gauge(ctx, url, "recsys_push_bytes_in_flight"); err == nil {
			inFlight = max(inFlight, int64(b))
		}
	}
	wg.Wait()
	_, hwm, err := rss(pid)
	if err != nil {
		return err
	}
	res.PeakRSSMB, res.HWMMB, res.PeakInFlightMB = mb(peak), mb(hwm), mb(inFlight)
	res.Answers, res.Failed = answers.Load(), failed.Load()
	fmt.Fprintf(stdout, "| %d × %d | %d streams (distinct callers), count %d, 1 msg/s, %v | budget %d MiB, workers %d | %.0f MB | %.0f MB | %.0f MB | %.1f MB | %d answers, %d streams failed |\n",
		o.items, o.factors, o.streams, o.count, o.duration, o.budgetMiB, o.workers, res.BaselineRSSMB, res.PeakRSSMB, res.HWMMB,
		res.PeakInFlightMB, res.Answers, res.Failed)
	return json.NewEncoder(stdout).Encode(res)
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// rss reads VmRSS and VmHWM of a process, in bytes.
func rss(pid int) (cur, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s %q: %w", k, v, err)
		}
		if k == "VmRSS" {
			cur = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return cur, hwm, sc.Err()
}

// gauge reads one unlabelled metric from a Prometheus text page.
func gauge(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s not in %s", name, url)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func generateModel(o options) (*mf.Model, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, o.items)
	factors := make([]float32, o.items*o.factors)
	for i := range ids {
		ids[i] = synth.ItemID(i)
	}
	for i := range factors {
		factors[i] = float32(rng.NormFloat64() * 0.1)
	}
	return mf.New(mf.Info{Users: int64(o.users), Items: int64(o.items), TrainedAt: time.Now().UTC(),
		Hyper: mf.Hyperparameters{Factors: o.factors, Regularization: 0.1, Alpha: 10, Iterations: 1}}, ids, factors)
}

func waitModel(ctx context.Context, conn *grpc.ClientConn, op grpc.CallOption) error {
	mc := recsysv1.NewModelServiceClient(conn)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := mc.GetModel(ctx, &recsysv1.GetModelRequest{}, op)
		if err == nil && r.GetModel().GetItems() > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("recsysd serves no model after 2 minutes: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func recordEvents(ctx context.Context, conn *grpc.ClientConn, op grpc.CallOption, o options) error {
	ec := recsysv1.NewEventServiceClient(conn)
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	var evs []*recsysv1.Event
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		_, err := ec.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}, op)
		evs = evs[:0]
		if err != nil {
			return fmt.Errorf("RecordEvents: %w", err)
		}
		return nil
	}
	for u := range o.users {
		for k := range o.eventsPerUser {
			evs = append(evs, &recsysv1.Event{EventId: fmt.Sprintf("pm-%d-%d", u, k), UserId: synth.UserID(u),
				ItemId: synth.ItemID(rng.IntN(o.items)), Type: recsysv1.EventType_EVENT_TYPE_VIEW, Quantity: 1,
				Timestamp: timestamppb.New(now.Add(-time.Duration(o.eventsPerUser-k) * time.Minute))})
			if len(evs) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return rdb.Del(ctx, keys...).Err()
	}
	return nil
}
