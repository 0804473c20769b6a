package daemon_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// running is a recsysd on a real Redis, reached over TCP like production.
type running struct {
	d      *daemon.Daemon
	conn   *grpc.ClientConn
	rec    recsysv1.RecommendationServiceClient
	events recsysv1.EventServiceClient
	models recsysv1.ModelServiceClient
	reg    *registry.Redis
	rdb    redis.UniversalClient
	prefix string
	// stop stops the daemon (SIGTERM's path: drain, then exit) and waits
	// for Run to return; cleanup calls it too.
	stop func()
}

// operatorToken is the token of the operator caller every test daemon knows.
const operatorToken = "test-operator-token"

// start runs a recsysd on the test Redis (REDIS_ADDR, or the cluster of
// REDIS_CLUSTER_ADDRS) with authentication on, connected as an operator.
// opts adjust the configuration before the daemon is built; one that sets
// Prefix starts a daemon on another's keys (a restart, a second replica).
func start(t *testing.T, opts ...func(*daemon.Config)) *running {
	t.Helper()
	cfg := daemon.Config{
		GRPCAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		RedisAddr: redistest.Addr(),
		Tokens:    access.TokenLine(access.Operator, "test-operator", operatorToken),
		ModelPoll: 50 * time.Millisecond, ReadyCheck: 50 * time.Millisecond, DrainTimeout: 5 * time.Second,
		PopularRefresh: 50 * time.Millisecond, TrendingRefresh: 50 * time.Millisecond,
		// Tests that check personalized answers must not see a degraded one
		// because this shared machine (with -race) was slow for 50 ms; the
		// outage tests make Redis fail outright, which does not wait for it.
		ProfileBudget: 2 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	rdb := testClient(t, cfg.RedisAddr)
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(t, rdb)
	}
	prefix := cfg.Prefix
	d, err := daemon.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	// As the operator; over TLS when the daemon serves TLS (its certificate
	// is then signed by the client CA, as the TLS test sets it up).
	connOpts := []client.Option{client.WithToken(operatorToken), client.WithRetries(0), client.WithTimeout(0)}
	if cfg.TLSCert != "" {
		connOpts = append(connOpts, client.WithTLSFiles(client.TLSFiles{CAFile: cfg.ClientCA}))
	}
	dialOpts, err := client.DialOptions(connOpts...)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(d.Addr().String(), dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{d: d, conn: conn, rec: recsysv1.NewRecommendationServiceClient(conn),
		events: recsysv1.NewEventServiceClient(conn), models: recsysv1.NewModelServiceClient(conn), reg: reg, rdb: rdb, prefix: prefix, stop: stop}
	hc := healthpb.NewHealthClient(conn)
	eventually(t, "health SERVING", func() bool {
		res, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return r
}

// testClient is a client of the shared test Redis, or of addr when a test
// runs the daemon on a redis-server of its own.
func testClient(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	if addr == redistest.Addr() {
		return redistest.Client(t)
	}
	c, err := redisconn.New(redisconn.Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

func (r *running) servingVersion(t *testing.T) string {
	res, err := r.models.GetModel(context.Background(), &recsysv1.GetModelRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetModel().GetVersion()
}

// modelTrainedAt is the training time of every test model.
var modelTrainedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// model returns a small model whose items are "i0".."i49"; shift changes the
// factors so versions rank differently.
func model(t *testing.T, shift float32) *mf.Model {
	t.Helper()
	const n, f = 50, 8
	ids := make([]string, n)
	factors := make([]float32, n*f)
	for i := range ids {
		ids[i] = "i" + strconv.Itoa(i)
		for d := 0; d < f; d++ {
			factors[i*f+d] = float32((i*7+d*3)%11)/10 - 0.5 + shift
		}
	}
	m, err := mf.New(mf.Info{Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 5}, TrainedAt: modelTrainedAt},
		ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *running) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

// A published model reaches the running server, and each later version
// replaces it while Recommend calls keep coming, with no failed request and
// no answer from an older version after a newer one.
func TestHotSwapUnderLoad(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	var evs []*recsysv1.Event
	for u := 0; u < 20; u++ {
		for k := 0; k < 5; k++ {
			evs = append(evs, &recsysv1.Event{EventId: strconv.Itoa(u*10 + k), UserId: "u" + strconv.Itoa(u),
				ItemId: "i" + strconv.Itoa((u*3+k)%50), Type: recsysv1.EventType_EVENT_TYPE_VIEW})
		}
	}
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}
	v1, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "first model", func() bool { return r.servingVersion(t) == v1.Name() })

	order := map[string]int{v1.Name(): 1}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failures int
	var firstErr error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			last := 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u" + strconv.Itoa((w+i)%20), Count: 10})
				mu.Lock()
				calls++
				rank := order[res.GetModelVersion()]
				switch {
				case err != nil:
					failures++
					firstErr = err
				case res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || len(res.GetItems()) != 10 || rank == 0:
					failures++
					firstErr = errors.New("bad answer: " + res.String())
				case rank < last:
					failures++
					firstErr = errors.New("answer from " + res.GetModelVersion() + " after a newer version")
				}
				last = max(last, rank)
				mu.Unlock()
			}
		}(w)
	}
	for k := 2; k <= 4; k++ {
		mu.Lock()
		callsBefore := calls
		mu.Unlock()
		m := model(t, float32(k)/10)
		// The registry names a version at Publish; holding the lock across
		// Publish records its rank before any answer from it can be checked.
		mu.Lock()
		v, err := r.reg.Publish(ctx, m)
		if err != nil {
			mu.Unlock()
			t.Fatal(err)
		}
		order[v.Name()] = k
		mu.Unlock()
		eventually(t, "version "+v.Name(), func() bool { return r.servingVersion(t) == v.Name() })
		eventually(t, "calls on the new version", func() bool { mu.Lock(); defer mu.Unlock(); return calls > callsBefore+20 })
	}
	close(stop)
	wg.Wait()
	if failures > 0 {
		t.Fatalf("%d of %d calls failed during hot swaps; first: %v", failures, calls, firstErr)
	}
	t.Logf("%d Recommend calls across 3 hot swaps, none failed", calls)
}

// A damaged version is refused and the old model keeps serving.
func TestCorruptModelKeepsOldServing(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	good, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "good model", func() bool { return r.servingVersion(t) == good.Name() })

	bad, err := r.reg.Stage(ctx, model(t, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redistest.Client(t)
	chunk := r.prefix + ":model:{reg}:v:" + bad.Name() + ":chunk:0"
	if err := rdb.SetRange(ctx, chunk, 200, "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	failuresBefore := r.metric(t, `recsys_model_loads_total{result="error"}`)
	if _, err := r.reg.Activate(ctx, bad.Name()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed load", func() bool {
		return r.metric(t, `recsys_model_loads_total{result="error"}`) > failuresBefore
	})
	if v := r.servingVersion(t); v != good.Name() {
		t.Fatalf("serving %q after a corrupt activation, want %q", v, good.Name())
	}
	res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "anyone", Count: 3, Context: &recsysv1.RequestContext{ContextItemId: "i1"}})
	if err != nil || res.GetModelVersion() != good.Name() {
		t.Fatalf("Recommend after corrupt activation: %v %v", res, err)
	}
}

// Reflection lists every service, so grpcurl works.
func TestReflectionListsServices(t *testing.T) {
	r := start(t)
	stream, err := grpc_reflection_v1.NewServerReflectionClient(r.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&grpc_reflection_v1.ServerReflectionRequest{
		MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range res.GetListServicesResponse().GetService() {
		got[s.GetName()] = true
	}
	for _, want := range []string{"recsys.v1.RecommendationService", "recsys.v1.EventService", "recsys.v1.CatalogService",
		"recsys.v1.ModelService", "grpc.health.v1.Health"} {
		if !got[want] {
			t.Errorf("reflection does not list %s (got %v)", want, got)
		}
	}
}
