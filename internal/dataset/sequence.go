package dataset

import (
	"io"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// sequence reads "user item item ..." lines (space or TAB separated), the
// items in time order, as in the Amazon 5-core files of the sequential
// recommendation literature. Each item becomes a Purchase (a review stands
// for a purchase). The files have no times, so the k-th item of a user
// (k = 0, 1, ...) gets BaseTime + k*SequenceStep: every user starts at
// BaseTime, and the order within a user is kept, which is what
// leave-last-out evaluation needs. A line with a user and no items yields no
// events.
func (r *reader) sequence(in io.Reader) error {
	ls := newLines(in)
	base, step := r.opts.baseTime(), r.opts.sequenceStep()
	for {
		b, ok := ls.next()
		if !ok {
			break
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		if err := r.row(); err != nil {
			return err
		}
		user := f[0]
		for k, item := range f[1:] {
			e := event.Event{UserID: user, ItemID: item, Type: event.Purchase, Time: base.Add(time.Duration(k) * step)}
			if err := r.emit(e, ls.line, 0); err != nil {
				return err
			}
		}
	}
	return ls.err(r.opts.Name)
}
