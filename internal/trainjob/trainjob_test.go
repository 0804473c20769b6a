package trainjob

import (
	"context"
	"strings"
	"testing"
)

// A job that cannot run fails Check (and Open) naming what is missing.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // "" = runs
	}{
		{"files to a directory", func(c *Config) { c.Inputs, c.ModelsDir = []string{"e.csv"}, "models" }, ""},
		{"files, dry run", func(c *Config) { c.Inputs, c.DryRun = []string{"e.csv"}, true }, ""},
		{"the stream to Redis", func(c *Config) { c.RedisAddr = "127.0.0.1:6379" }, ""},
		{"nothing to read", func(c *Config) { c.ModelsDir = "models" }, "give --input FILE or --redis-addr ADDR"},
		{"nowhere to publish", func(c *Config) { c.Inputs = []string{"e.csv"} }, "nowhere to publish"},
		{"Redis without its registry", func(c *Config) { c.RedisAddr, c.PublishRedis = "127.0.0.1:6379", false }, "nowhere to publish"},
		{"bad Redis address", func(c *Config) { c.RedisAddr, c.DryRun = ",", true }, "--redis-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig()
			tc.edit(&c)
			err := c.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check: %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check: %v, want an error with %q", err, tc.want)
			}
			if tc.want != "" {
				if _, err := Open(context.Background(), c); err == nil {
					t.Error("Open accepted a job that fails Check")
				}
			}
		})
	}
}
