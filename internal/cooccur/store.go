package cooccur

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Store keeps the lists in Redis, one STRING per item:
//
//	<prefix>:bt:{<item>}   the item's list, compact binary (encode), with a TTL
//
// Each key is written whole by one SET … EX, so a reader sees an item's old
// list or its new one, never a mix; a job that dies midway leaves the lists
// it did not reach as they were, still serving until their TTL. Lists of
// items that drop out of the statistics are not deleted: they expire. The
// hash tag is the item id, so the keys spread over a cluster, and each
// command touches one key. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// DefaultTTL is how long a list lives without being rewritten: well beyond a
// daily (or weekly) retrain, so a job that fails for a few runs does not
// empty the lists, yet bounded, so items gone from the shop disappear.
const DefaultTTL = 14 * 24 * time.Hour

// writeBatch is how many lists go into one pipeline.
const writeBatch = 500

// NewStore returns a store on rdb with the key prefix of recsysd ("recsys").
func NewStore(rdb redis.UniversalClient, prefix string) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("co-purchase store: nil redis client")
	}
	if prefix == "" {
		prefix = "recsys"
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("co-purchase store: prefix %q must not contain '{' or '}'", prefix)
	}
	return &Store{rdb: rdb, prefix: prefix}, nil
}

// Key is the key of an item's list.
func (s *Store) Key(itemID string) string {
	// The item id is escaped like a user id (a '}' would end the tag early).
	return s.prefix + ":bt:{" + redisconn.EscapeTag(itemID) + "}"
}

// Write stores every list with the given TTL (DefaultTTL when 0), in
// pipelines of a few hundred, and returns how many it wrote.
func (s *Store) Write(ctx context.Context, lists []List, ttl time.Duration) (int, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	written := 0
	for start := 0; start < len(lists); start += writeBatch {
		batch := lists[start:min(start+writeBatch, len(lists))]
		pipe := s.rdb.Pipeline()
		for _, l := range batch {
			pipe.Set(ctx, s.Key(l.ItemID), encode(l.Entries), ttl)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return written, fmt.Errorf("write bought-together lists: %w", err)
		}
		written += len(batch)
	}
	return written, nil
}

// Read returns the lists of itemIDs, in the same order, in one pipelined
// round trip; an item without a list gets nil.
func (s *Store) Read(ctx context.Context, itemIDs []string) ([][]Entry, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(itemIDs))
	for i, id := range itemIDs {
		cmds[i] = pipe.Get(ctx, s.Key(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read bought-together lists: %w", err)
	}
	out := make([][]Entry, len(itemIDs))
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read bought-together list of %q: %w", itemIDs[i], err)
		}
		if out[i], err = decode(b); err != nil {
			return nil, fmt.Errorf("bought-together list of %q: %w", itemIDs[i], err)
		}
	}
	return out, nil
}

// encodingVersion is the first byte of a stored list.
const encodingVersion = 1

// encode writes a list as: version byte, uvarint count, then per entry
// uvarint id length, id bytes, float32 score (little endian), uvarint count.
// About 10 bytes plus the id per entry.
func encode(es []Entry) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen32+len(es)*(16+binary.MaxVarintLen32))
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(len(e.ItemID)))
		b = append(b, e.ItemID...)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(e.Score))
		b = binary.AppendUvarint(b, uint64(e.Count))
	}
	return b
}

// maxIDBytes bounds an id in a stored list (recsysd accepts 256 bytes; the
// margin admits ids of a larger limit).
const maxIDBytes = 4096

var errCorrupt = errors.New("corrupt co-purchase list")

// decode reads what encode wrote and rejects anything else.
func decode(b []byte) ([]Entry, error) {
	if len(b) < 2 || b[0] != encodingVersion {
		return nil, fmt.Errorf("%w: bad header", errCorrupt)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > MaxCap {
		return nil, fmt.Errorf("%w: bad length", errCorrupt)
	}
	b = b[k:]
	out := make([]Entry, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l == 0 || l > maxIDBytes || uint64(len(b)-k) < l+4 {
			return nil, fmt.Errorf("%w: bad entry %d", errCorrupt, len(out))
		}
		id := string(b[k : k+int(l)])
		b = b[k+int(l):]
		score := math.Float32frombits(binary.LittleEndian.Uint32(b))
		b = b[4:]
		c, k := binary.Uvarint(b)
		if k <= 0 || c > math.MaxUint32 || !utf8.ValidString(id) || math.IsNaN(float64(score)) || math.IsInf(float64(score), 0) {
			return nil, fmt.Errorf("%w: bad entry %d", errCorrupt, len(out))
		}
		b = b[k:]
		out = append(out, Entry{ItemID: id, Score: score, Count: uint32(c)})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	return out, nil
}
