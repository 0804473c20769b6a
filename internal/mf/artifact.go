package mf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/recsys-dev/recsys/internal/event"
)

// The artifact layout (all integers little-endian), described for readers
// in models/README.md:
//
//	magic        8 bytes  "RECSYSMF"
//	format       uint32   FormatVersion
//	header_len   uint32   length of the JSON header
//	header       JSON     Info
//	items        uint32   N, must equal the header's "items"
//	factors      uint32   F, must equal the header's hyperparameters.factors
//	id table     N × (uint32 length, bytes)
//	factors      N × F float32, row-major (item i's factors are contiguous)
//	sections     (format 2) uint32 count, then per section, sorted by kind:
//	             uint32 kind length, kind, uint32 version, uint64 length, payload
//	checksum     uint32   CRC-32C (Castagnoli) of every byte before it
const (
	Magic         = "RECSYSMF"
	FormatVersion = 2
	// formatNoSections is the first format, without sections; Read still
	// accepts it.
	formatNoSections = 1
	maxHeaderLen     = 1 << 20
	// A damaged header can make Read allocate this much before the data
	// behind it has been read: 4 MiB of id table, 64 MiB of factors (a
	// 1M × 16 or 250k × 64 model is read with one exact allocation).
	idsUpFront     = 1 << 18
	factorsUpFront = 16 << 20
)

// ErrCorrupt marks an artifact that is truncated, garbled or fails its
// checksum.
var ErrCorrupt = errors.New("corrupt model artifact")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Write encodes m as an artifact.
func Write(w io.Writer, m *Model) error {
	hdr, err := json.Marshal(m.info)
	if err != nil {
		return fmt.Errorf("encode model header: %w", err)
	}
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	var b [8]byte
	put32 := func(v uint32) {
		binary.LittleEndian.PutUint32(b[:4], v)
		_, _ = bw.Write(b[:4])
	}
	_, _ = bw.WriteString(Magic)
	put32(FormatVersion)
	put32(uint32(len(hdr)))
	_, _ = bw.Write(hdr)
	put32(uint32(len(m.ids)))
	put32(uint32(m.f))
	for _, id := range m.ids {
		put32(uint32(len(id)))
		_, _ = bw.WriteString(id)
	}
	for _, v := range m.factors {
		put32(math.Float32bits(v))
	}
	put32(uint32(len(m.sections)))
	for _, s := range m.sections {
		put32(uint32(len(s.Kind)))
		_, _ = bw.WriteString(s.Kind)
		put32(s.Version)
		binary.LittleEndian.PutUint64(b[:], uint64(len(s.Data)))
		_, _ = bw.Write(b[:])
		_, _ = bw.Write(s.Data)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	binary.LittleEndian.PutUint32(b[:4], crc.Sum32())
	if _, err := w.Write(b[:4]); err != nil {
		return fmt.Errorf("write model checksum: %w", err)
	}
	return nil
}

// Read decodes and checks an artifact: magic, format version, header, sizes,
// id table, factor values and checksum. Any defect is an error wrapping
// ErrCorrupt or ErrInvalid; nothing is returned half-loaded.
func Read(r io.Reader) (*Model, error) {
	crc := crc32.New(castagnoli)
	d := &decoder{r: io.TeeReader(bufio.NewReaderSize(r, 1<<16), crc)}
	magic := d.bytes(len(Magic))
	if d.err == nil && string(magic) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q (not a recsys model)", ErrCorrupt, magic)
	}
	format := d.u32()
	if d.err == nil && format != FormatVersion && format != formatNoSections {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d and %d", ErrCorrupt, format, formatNoSections, FormatVersion)
	}
	hlen := d.u32()
	if d.err == nil && hlen > maxHeaderLen {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, hlen)
	}
	hdr := d.bytes(int(hlen))
	if d.err != nil {
		return nil, d.fail("header")
	}
	var info Info
	if err := json.Unmarshal(hdr, &info); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	n, f := d.u32(), d.u32()
	if d.err != nil {
		return nil, d.fail("sizes")
	}
	switch {
	case n == 0 || n > MaxItems:
		return nil, fmt.Errorf("%w: %d items", ErrCorrupt, n)
	case int64(n) != info.Items:
		return nil, fmt.Errorf("%w: header says %d items, table has %d", ErrCorrupt, info.Items, n)
	case f == 0 || f > MaxFactors || int(f) != info.Hyper.Factors:
		return nil, fmt.Errorf("%w: %d factors, header says %d", ErrCorrupt, f, info.Hyper.Factors)
	}
	// The sizes are only claims until the bytes behind them have been read.
	// Past idsUpFront and factorsUpFront the tables grow with the data (ids
	// by append, factors by doubling up to the exact size), so a damaged
	// header costs a bounded amount plus a few times the bytes actually read,
	// never MaxItems × MaxFactors. A valid artifact still ends in one
	// contiguous block of exactly n×f values.
	ids := make([]string, 0, min(int(n), idsUpFront))
	for i := 0; i < int(n); i++ {
		l := d.u32()
		if d.err == nil && l > MaxIDLength {
			return nil, fmt.Errorf("%w: item %d has an id of %d bytes", ErrCorrupt, i, l)
		}
		ids = append(ids, string(d.bytes(int(l))))
		if d.err != nil {
			return nil, d.fail("id table")
		}
	}
	total := int(n) * int(f)
	factors := make([]float32, 0, min(total, factorsUpFront))
	buf := make([]byte, 4*int(f))
	for i := 0; i < int(n) && d.err == nil; i++ {
		d.full(buf)
		if d.err != nil {
			break
		}
		if len(factors)+int(f) > cap(factors) {
			grown := make([]float32, len(factors), min(total, max(2*cap(factors), len(factors)+int(f))))
			copy(grown, factors)
			factors = grown
		}
		for j := range int(f) {
			factors = append(factors, math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:])))
		}
	}
	if d.err != nil {
		return nil, d.fail("factors")
	}
	var sections []Section
	if format >= 2 {
		var err error
		if sections, err = d.sections(); err != nil {
			return nil, err
		}
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(d.r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: checksum: %v", ErrCorrupt, truncated(err))
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, content hashes to %08x", ErrCorrupt, got, want)
	}
	var extra [1]byte
	if k, _ := d.r.Read(extra[:]); k != 0 {
		return nil, fmt.Errorf("%w: trailing bytes after checksum", ErrCorrupt)
	}
	ids, factors, dropped := dropBadIDs(ids, factors, int(f))
	if dropped.Items > 0 {
		info.Items = int64(len(ids))
		for _, s := range sections {
			dropped.Sections = append(dropped.Sections, s.Kind)
		}
		sections = nil
	}
	m, err := New(info, ids, factors)
	if err != nil {
		if dropped.Items > 0 {
			return nil, fmt.Errorf("%w (after dropping %d items with bad ids)", err, dropped.Items)
		}
		return nil, err
	}
	m.dropped = dropped
	if len(sections) == 0 {
		return m, nil
	}
	if err := checkSections(sections); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	m.sections = sections
	return m, nil
}

// dropBadIDs removes the items whose id breaks the one id rule
// (event.CheckID), with their factor rows, in place. Such a model was trained
// before the rule was enforced everywhere; refusing it would leave a
// restarted server without a model, serving it would fail every answer that
// holds the id (protobuf cannot marshal invalid UTF-8). Sections are not
// touched here: Read drops them all when an item goes, since their payloads
// may refer to items by index.
func dropBadIDs(ids []string, factors []float32, f int) ([]string, []float32, BadIDs) {
	var d BadIDs
	kept := 0
	for i, id := range ids {
		if event.CheckID(id) != nil {
			d.Items++
			continue
		}
		if kept != i {
			ids[kept] = id
			copy(factors[kept*f:(kept+1)*f], factors[i*f:(i+1)*f])
		}
		kept++
	}
	return ids[:kept], factors[:kept*f], d
}

// sections reads the section list of a format-2 artifact. A payload is read
// into a buffer that grows with the bytes actually read, so a damaged length
// costs no more than the data behind it.
func (d *decoder) sections() ([]Section, error) {
	n := d.u32()
	if d.err != nil {
		return nil, d.fail("section count")
	}
	if n > MaxSections {
		return nil, fmt.Errorf("%w: %d sections, at most %d", ErrCorrupt, n, MaxSections)
	}
	out := make([]Section, 0, n)
	for range n {
		kl := d.u32()
		if d.err == nil && (kl == 0 || kl > MaxSectionKind) {
			return nil, fmt.Errorf("%w: section kind of %d bytes", ErrCorrupt, kl)
		}
		kind := string(d.bytes(int(kl)))
		version := d.u32()
		var lb [8]byte
		d.full(lb[:])
		if d.err != nil {
			return nil, d.fail("section header")
		}
		size := binary.LittleEndian.Uint64(lb[:])
		if size > MaxSectionBytes {
			return nil, fmt.Errorf("%w: section %q claims %d bytes", ErrCorrupt, kind, size)
		}
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, d.r, int64(size)); err != nil {
			return nil, fmt.Errorf("%w: section %q: %v", ErrCorrupt, kind, truncated(err))
		}
		out = append(out, Section{Kind: kind, Version: version, Data: buf.Bytes()})
	}
	return out, nil
}

type decoder struct {
	r   io.Reader
	err error
	b   [4]byte
}

func (d *decoder) full(p []byte) {
	if d.err == nil {
		_, d.err = io.ReadFull(d.r, p)
	}
}

func (d *decoder) u32() uint32 {
	d.full(d.b[:])
	if d.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(d.b[:])
}

func (d *decoder) bytes(n int) []byte {
	p := make([]byte, n)
	d.full(p)
	return p
}

func (d *decoder) fail(part string) error {
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, part, truncated(d.err))
}

func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("file is truncated")
	}
	return err
}
