package redisconn

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestNewChoosesTheClient(t *testing.T) {
	for _, tc := range []struct {
		name        string
		o           Options
		wantCluster bool
		wantErr     bool
	}{
		{"one address", Options{Addr: "127.0.0.1:6379"}, false, false},
		{"several addresses", Options{Addr: "10.0.0.1:7000, 10.0.0.2:7000"}, true, false},
		{"forced cluster", Options{Addr: "cfg.example:6379", Cluster: true}, true, false},
		{"db on a cluster", Options{Addr: "a:1,b:2", DB: 3}, false, true},
		{"no address", Options{Addr: " , "}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.o)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer c.Close()
			_, got := c.(*redis.ClusterClient)
			if got != tc.wantCluster {
				t.Errorf("got %T, want cluster %v", c, tc.wantCluster)
			}
		})
	}
}

func TestUniversalDefaults(t *testing.T) {
	u, err := Options{Addr: "x:1"}.Universal()
	if err != nil {
		t.Fatal(err)
	}
	if u.DialTimeout != time.Second || u.ReadTimeout != time.Second || u.WriteTimeout != time.Second ||
		u.PoolTimeout != time.Second || u.MaxRetries != 2 || !u.ContextTimeoutEnabled {
		t.Errorf("got %+v", u)
	}
	u, err = Options{Addr: "x:1", MaxRetries: -1, ReadTimeout: 5 * time.Second}.Universal()
	if err != nil {
		t.Fatal(err)
	}
	if u.MaxRetries != -1 || u.ReadTimeout != 5*time.Second {
		t.Errorf("got retries %d read timeout %v", u.MaxRetries, u.ReadTimeout)
	}
}
