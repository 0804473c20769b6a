package profile

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// A history entry is stored as one LIST element in a compact binary form:
//
//	byte 0      bits 0-3: event type; bit 4: a quantity follows; bit 5: a
//	            weight follows; bits 6-7: format version, 0
//	varint      event time, Unix milliseconds (zigzag, so pre-1970 works)
//	varint      quantity (only with bit 4; omitted when 0)
//	4 bytes     weight, float32 little-endian (only with bit 5; omitted when 0)
//	rest        the item id, raw bytes
//
// The item id comes last and takes the rest of the element, so it needs
// neither a length nor escaping: any byte sequence round-trips. A VIEW of a
// 10-byte item id costs 1+6+10 = 17 bytes.
const (
	entryTypeMask   = 0x0f
	entryHasQty     = 0x10
	entryHasWeight  = 0x20
	entryReserved   = 0xc0
	entryMaxHeadLen = 1 + binary.MaxVarintLen64 + binary.MaxVarintLen32 + 4
)

// appendEntry appends the encoding of e to b.
func appendEntry(b []byte, e event.Event) []byte {
	head := byte(e.Type) & entryTypeMask
	if e.Quantity != 0 {
		head |= entryHasQty
	}
	if e.Weight != 0 {
		head |= entryHasWeight
	}
	b = append(b, head)
	b = binary.AppendVarint(b, e.Time.UnixMilli())
	if e.Quantity != 0 {
		b = binary.AppendVarint(b, int64(e.Quantity))
	}
	if e.Weight != 0 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(e.Weight))
	}
	return append(b, e.ItemID...)
}

var errCorruptEntry = errors.New("corrupt history entry")

// decodeEntry is the inverse of appendEntry.
func decodeEntry(b []byte) (Entry, error) {
	if len(b) < 2 {
		return Entry{}, fmt.Errorf("%w: %d bytes", errCorruptEntry, len(b))
	}
	head := b[0]
	if head&entryReserved != 0 {
		return Entry{}, fmt.Errorf("%w: unknown format version in header %#x", errCorruptEntry, head)
	}
	var e Entry
	e.Type = event.Type(head & entryTypeMask)
	if !e.Type.Valid() {
		return Entry{}, fmt.Errorf("%w: event type %d", errCorruptEntry, e.Type)
	}
	b = b[1:]
	ms, n := binary.Varint(b)
	if n <= 0 {
		return Entry{}, fmt.Errorf("%w: bad time", errCorruptEntry)
	}
	e.Time = time.UnixMilli(ms).UTC()
	b = b[n:]
	if head&entryHasQty != 0 {
		q, n := binary.Varint(b)
		if n <= 0 || q < math.MinInt32 || q > math.MaxInt32 {
			return Entry{}, fmt.Errorf("%w: bad quantity", errCorruptEntry)
		}
		e.Quantity = int32(q)
		b = b[n:]
	}
	if head&entryHasWeight != 0 {
		if len(b) < 4 {
			return Entry{}, fmt.Errorf("%w: truncated weight", errCorruptEntry)
		}
		e.Weight = math.Float32frombits(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) == 0 {
		return Entry{}, fmt.Errorf("%w: no item id", errCorruptEntry)
	}
	e.ItemID = string(b)
	return e, nil
}

// dedupMemberLen is the size of the digest that stands for an event in the
// dedup sets. 96 bits keep the chance of any collision among a million
// remembered ids below 1e-17, and a fixed 12-byte member keeps a per-user set
// small (and eligible for Redis's compact listpack encoding) whatever length
// the producer's ids have.
const dedupMemberLen = 12

// dedupMember is the dedup-set member of an event: a digest of the user and
// the event id. Including the user keeps two users' identical ids (a
// producer bug) apart in the global set as they are in the per-user sets.
func dedupMember(userID, eventID string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(userID)))])
	h.Write([]byte(userID))
	h.Write([]byte(eventID))
	var sum [sha256.Size]byte
	return string(h.Sum(sum[:0])[:dedupMemberLen])
}
