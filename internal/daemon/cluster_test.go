package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
)

// shard is the master that owns the global keys ({g}: the event stream and
// popularity) of a test prefix, and its replica.
type shard struct {
	master, replica string
}

func globalShard(t *testing.T, r *running) shard {
	t.Helper()
	cc, ok := r.rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client %T is not a cluster client", r.rdb)
	}
	ctx := context.Background()
	slot, err := cc.ClusterKeySlot(ctx, r.prefix+":{g}:events").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Gossip may not have told every node about a replica that just
	// (re)joined: ask until the answer lists one.
	var sh shard
	eventually(t, fmt.Sprintf("a master and a replica for slot %d", slot), func() bool {
		slots, err := cc.ClusterSlots(ctx).Result()
		if err != nil {
			return false
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) >= 2 {
				sh = shard{master: s.Nodes[0].Addr, replica: s.Nodes[1].Addr}
				return true
			}
		}
		return false
	})
	return sh
}

func nodeClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// infoField returns one field of INFO section (empty when unreachable).
func infoField(c *redis.Client, section, field string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func role(c *redis.Client) string { return infoField(c, "replication", "role") }

// clusterOK reports whether every node of the test cluster answers and
// says cluster_state:ok.
func clusterOK() bool {
	for _, addr := range redistest.ClusterAddrs() {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := c.ClusterInfo(ctx).Result()
		cancel()
		_ = c.Close()
		if err != nil || !strings.Contains(s, "cluster_state:ok") {
			return false
		}
	}
	return true
}

// needCluster skips without a test cluster and otherwise waits until the
// cluster is whole: state ok everywhere and every replica in sync (a
// previous failover test may have just demoted or restarted a node).
func needCluster(t *testing.T) {
	t.Helper()
	if !redistest.Cluster() {
		t.Skip("needs a Redis Cluster (REDIS_CLUSTER_ADDRS): run `make test-cluster`")
	}
	eventually(t, "the cluster to be whole", clusterWhole)
}

// clusterWhole reports whether every node answers with cluster_state:ok and
// every replica's link to its master is up, with as many replicas as
// masters.
func clusterWhole() bool {
	if !clusterOK() {
		return false
	}
	masters, replicas := 0, 0
	for _, addr := range redistest.ClusterAddrs() {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		switch role(c) {
		case "master":
			masters++
		case "slave":
			if infoField(c, "replication", "master_link_status") != "up" {
				_ = c.Close()
				return false
			}
			replicas++
		}
		_ = c.Close()
	}
	return masters > 0 && masters == replicas
}

// checkClusterLoad checks the outcomes of a load across a failover:
// Recommend never failed, and RecordEvents failed only with Unavailable.
func checkClusterLoad(t *testing.T, l *load) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	degraded, refused := 0, 0
	for _, o := range l.recs {
		if o.code != codes.OK {
			t.Errorf("Recommend failed: %v %s", o.code, o.msg)
		}
		if o.degraded {
			degraded++
		}
	}
	for _, o := range l.writes {
		if o.code == codes.OK {
			continue
		}
		refused++
		if o.code != codes.Unavailable {
			t.Errorf("RecordEvents failed with %v %s, want only Unavailable", o.code, o.msg)
		}
	}
	t.Logf("%d Recommend (%d degraded), %d RecordEvents (%d Unavailable)", len(l.recs), degraded, len(l.writes), refused)
}

// TestClusterManualFailoverUnderLoad promotes the replica of the master that
// holds the event stream (CLUSTER FAILOVER, the coordinated failover of
// maintenance) while recsysd takes Recommend and RecordEvents calls.
// Recommend never fails, RecordEvents fails at most with Unavailable, and no
// acknowledged event is lost: a manual failover waits until the replica has
// every write of the master before it switches.
func TestClusterManualFailoverUnderLoad(t *testing.T) {
	needCluster(t)
	// No rate limit: with the profile breaker open, degraded answers come
	// at once and the load's one caller would exceed the operator's rate.
	r := start(t, func(c *daemon.Config) { c.RateLimits = server.RateLimits{} })
	ctx := context.Background()
	if _, err := r.reg.Publish(ctx, model(t, 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model", func() bool { return r.servingVersion(t) != "" })
	sh := globalShard(t, r)
	replica := nodeClient(t, sh.replica)
	l := startLoad(t, r, 3, 2)
	began := time.Now()
	eventually(t, "acknowledged writes", func() bool {
		return l.seen(began, true, func(o outcome) bool { return o.code == codes.OK })
	})

	if err := replica.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", sh.replica, err)
	}
	eventually(t, sh.replica+" to become master", func() bool { return role(replica) == "master" })
	eventually(t, "cluster state ok", clusterOK)
	after := time.Now()
	eventually(t, "writes after the failover", func() bool {
		return l.ackedSince(after, 20)
	})
	l.finish()
	checkClusterLoad(t, l)
	l.checkAcked(t, r)
}

// TestClusterMasterCrashUnderLoad kills (SIGKILL) the master that holds the
// event stream while recsysd is under load, and lets the cluster promote its
// replica. Recommend never fails; RecordEvents fails only with Unavailable
// while the shard has no master and works again after the promotion, with
// no restart of recsysd. Replication is asynchronous, so a crash can lose
// the writes the replica had not received yet: what must hold is that every
// event acknowledged before the replica had caught up with the master
// (replication offsets compared just before the kill) survives. The events
// acknowledged in the last moments may be lost; the test reports how many
// were.
func TestClusterMasterCrashUnderLoad(t *testing.T) {
	needCluster(t)
	// No rate limit: with the profile breaker open, degraded answers come
	// at once and the load's one caller would exceed the operator's rate.
	r := start(t, func(c *daemon.Config) { c.RateLimits = server.RateLimits{} })
	ctx := context.Background()
	if _, err := r.reg.Publish(ctx, model(t, 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model", func() bool { return r.servingVersion(t) != "" })
	sh := globalShard(t, r)
	master, replica := nodeClient(t, sh.master), nodeClient(t, sh.replica)
	pid, err := strconv.Atoi(infoField(master, "server", "process_id"))
	if err != nil {
		t.Fatalf("process id of %s: %v", sh.master, err)
	}
	configFile := infoField(master, "server", "config_file")
	if configFile == "" {
		t.Fatalf("%s runs without a config file; start the cluster with .ci/redis-cluster.sh", sh.master)
	}
	t.Cleanup(func() { rejoin(t, sh.master, configFile) })

	l := startLoad(t, r, 3, 2)
	began := time.Now()
	eventually(t, "acknowledged writes", func() bool {
		return l.ackedSince(began, 20)
	})
	// Sync point: everything the master had when its offset was read is on
	// the replica once the replica's offset reaches it.
	syncAt := time.Now()
	offset, _ := strconv.ParseInt(infoField(master, "replication", "master_repl_offset"), 10, 64)
	eventually(t, "the replica to catch up", func() bool {
		got, _ := strconv.ParseInt(infoField(replica, "replication", "slave_repl_offset"), 10, 64)
		return got >= offset
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	eventually(t, sh.replica+" to be promoted", func() bool { return role(replica) == "master" })
	eventually(t, "writes after the promotion", func() bool {
		n := 0
		return l.seen(killedAt, true, func(o outcome) bool {
			if o.code == codes.OK && o.start.After(killedAt) {
				n++
			}
			return n >= 20
		})
	})
	t.Logf("promotion and first writes within %v of the kill", time.Since(killedAt).Round(time.Millisecond))
	l.finish()
	checkClusterLoad(t, l)

	// Events acknowledged before the sync point must all be there.
	store, err := profile.NewStore(r.rdb, profile.Config{Prefix: r.prefix})
	if err != nil {
		t.Fatal(err)
	}
	inStream := map[string]bool{}
	eventually(t, "the event stream through the test's client", func() bool {
		// The test's own cluster client learns of the promotion within its
		// reload interval.
		clear(inStream)
		return store.ReadEvents(ctx, time.Time{}, time.Time{}, func(e event.Event) error {
			inStream[e.ID] = true
			return nil
		}) == nil
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	var before, lostBefore, later, lostLater int
	for user := range l.acked {
		ids := ackedIDs(user)
		ackEnd := l.ackTime[user]
		for _, id := range ids {
			if ackEnd.Before(syncAt) {
				before++
				if !inStream[id] {
					lostBefore++
				}
			} else {
				later++
				if !inStream[id] {
					lostLater++
				}
			}
		}
	}
	if lostBefore > 0 {
		t.Errorf("%d of %d events acknowledged before the sync point are lost from the stream", lostBefore, before)
	}
	// And their users' profiles (on whichever master holds them).
	for user, items := range l.acked {
		if !l.ackTime[user].Before(syncAt) {
			continue
		}
		var p profile.Profile
		eventually(t, "profile of "+user, func() bool {
			var err error
			p, err = store.Load(ctx, user)
			return err == nil
		})
		if len(p.History) != len(items) {
			t.Errorf("profile of %s acknowledged before the sync point: %d events, want %d", user, len(p.History), len(items))
		}
	}
	t.Logf("events acknowledged before the sync point: %d, all kept; after it: %d, %d lost with the crashed master", before, later, lostLater)
}

// ackedIDs returns the event ids of a load batch's user (see startLoad).
func ackedIDs(user string) []string {
	out := make([]string, 4)
	for k := range out {
		out[k] = fmt.Sprintf("%s-e%d", user, k)
	}
	return out
}

// rejoin starts a killed cluster node again from its config file
// (daemonize yes, so redis-server returns at once) and waits until it is
// back as a replica in sync, so later tests find the cluster whole.
func rejoin(t *testing.T, addr, configFile string) {
	bin := "redis-server"
	if b := os.Getenv("REDIS_SERVER_BIN"); b != "" {
		bin = b
	}
	if out, err := exec.Command(bin, configFile).CombinedOutput(); err != nil {
		t.Errorf("restart %s: %v: %s", addr, err, out)
		return
	}
	c := nodeClient(t, addr)
	eventually(t, addr+" back as a replica in sync", func() bool {
		return role(c) == "slave" && infoField(c, "replication", "master_link_status") == "up"
	})
	eventually(t, "the cluster to be whole", clusterWhole)
}
