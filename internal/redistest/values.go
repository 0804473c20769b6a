package redistest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redisconn"
)

// HostileID returns a random 24-byte id with the characters hash tags
// escape ('}' and '%') in the middle: tests of deletion look for it, and
// its escaped forms (IDForms), everywhere in Redis.
func HostileID(t testing.TB) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	b := make([]byte, 22)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:11]) + "}%" + string(b[11:])
}

// IDForms is an id as it may appear in Redis: raw, escaped for a hash tag,
// and URL-escaped (query and path).
func IDForms(id string) []string {
	return []string{id, redisconn.EscapeTag(id), url.QueryEscape(id), url.PathEscape(id)}
}

// EachString calls fn with every key name under prefix and every string
// stored in it: string values, list elements, hash fields and values, set
// and sorted-set members, stream entries' fields and values. what is "key
// name" or the key's type.
func EachString(t testing.TB, rdb redis.UniversalClient, prefix string, fn func(key, what, v string)) {
	t.Helper()
	ctx := context.Background()
	keys, err := Keys(ctx, rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		fn(k, "key name", k)
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "list":
			vals = rdb.LRange(ctx, k, 0, -1).Val()
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = rdb.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					vals = append(vals, f, fmt.Sprint(v))
				}
			}
		case "none": // expired meanwhile
		default:
			t.Fatalf("key %s of type %s: the test does not read it", k, typ)
		}
		for _, v := range vals {
			fn(k, typ, v)
		}
	}
}
