// Package profile: PROVISIONAL types only, replaced by the profile branch at merge.
package profile

import (
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

type Entry struct {
	ItemID   string
	Type     event.Type
	Time     time.Time
	Quantity int32
	Weight   float32
}
type Purchase struct {
	ItemID string
	Time   time.Time
}
type Profile struct {
	UserID              string
	History             []Entry
	Purchased           []Purchase
	PurchaseCount       int64
	FirstSeen, LastSeen time.Time
}
type ItemWeight struct {
	ItemID   string
	Weight   float64
	LastTime time.Time
	Events   int
}

func (p Profile) ItemWeights(w event.Weighting, now time.Time) []ItemWeight {
	idx := map[string]int{}
	var out []ItemWeight
	for _, e := range p.History {
		i, ok := idx[e.ItemID]
		if !ok {
			i = len(out)
			idx[e.ItemID] = i
			out = append(out, ItemWeight{ItemID: e.ItemID})
		}
		out[i].Weight += w.Of(event.Event{ItemID: e.ItemID, Type: e.Type, Time: e.Time, Quantity: e.Quantity, Weight: e.Weight}, now)
		out[i].Events++
		if e.Time.After(out[i].LastTime) {
			out[i].LastTime = e.Time
		}
	}
	return out
}

type ItemScore struct {
	ItemID string
	Score  float64
}

type RecordResult struct{ Accepted, Duplicates int }
