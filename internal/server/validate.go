package server

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxCount       int           // items per answer, default 500
	MaxBatch       int           // events or items per write request, default 1000
	MaxExclude     int           // exclude_item_ids per request, default 1000
	MaxIDBytes     int           // bytes per user or item id, default 256
	MaxFutureSkew  time.Duration // how far in the future an event may be, default 5m
	MaxQuantity    int32         // per event, default 10000
	MaxCustomValue float32       // weight of a CUSTOM event, default 1000
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxCount, 500)
	def(&l.MaxBatch, 1000)
	def(&l.MaxExclude, 1000)
	def(&l.MaxIDBytes, 256)
	if l.MaxFutureSkew <= 0 {
		l.MaxFutureSkew = 5 * time.Minute
	}
	if l.MaxQuantity <= 0 {
		l.MaxQuantity = 10000
	}
	if l.MaxCustomValue <= 0 {
		l.MaxCustomValue = 1000
	}
	return l
}

// minEventTime rejects timestamps that are certainly wrong (unset clocks).
var minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// validator checks requests before any handler runs, so handlers can trust
// their input. Every failure names the field.
type validator struct {
	l   Limits
	now func() time.Time
}

func (v *validator) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := decodeError(ctx); err != nil {
			return nil, err // the request did not decode (see requestCodec)
		}
		if err := v.check(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (v *validator) check(req any) error {
	switch r := req.(type) {
	case *recsysv1.RecommendRequest:
		if err := v.id("user_id", r.GetUserId()); err != nil {
			return err
		}
		if err := v.count(r.GetCount()); err != nil {
			return err
		}
		if err := v.ids("exclude_item_ids", r.GetExcludeItemIds(), v.l.MaxExclude, false); err != nil {
			return err
		}
		if c := r.GetContext(); c != nil && c.GetContextItemId() != "" {
			if err := v.id("context.context_item_id", c.GetContextItemId()); err != nil {
				return err
			}
		}
		if p := r.GetContext().GetPlacement(); len(p) > v.l.MaxIDBytes || !utf8.ValidString(p) {
			return invalid("context.placement", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", v.l.MaxIDBytes))
		}
	case *recsysv1.SimilarItemsRequest:
		if err := v.id("item_id", r.GetItemId()); err != nil {
			return err
		}
		if err := v.count(r.GetCount()); err != nil {
			return err
		}
		return v.ids("exclude_item_ids", r.GetExcludeItemIds(), v.l.MaxExclude, false)
	case *recsysv1.RecordEventsRequest:
		return v.events(r.GetEvents())
	case *recsysv1.GetProfileRequest:
		return v.id("user_id", r.GetUserId())
	case *recsysv1.DeleteUserRequest:
		return v.id("user_id", r.GetUserId())
	case *recsysv1.UpsertItemsRequest:
		return v.items(r.GetItems())
	case *recsysv1.GetItemsRequest:
		return v.ids("item_ids", r.GetItemIds(), v.l.MaxBatch, true)
	case *recsysv1.ActivateModelRequest:
		if r.GetVersion() == "" {
			return invalid("version", "must not be empty")
		}
		if len(r.GetVersion()) > v.l.MaxIDBytes || !utf8.ValidString(r.GetVersion()) {
			return invalid("version", "not a valid version string")
		}
	}
	return nil
}

func (v *validator) id(field, s string) error {
	switch {
	case s == "":
		return invalid(field, "must not be empty")
	case len(s) > v.l.MaxIDBytes:
		return invalid(field, fmt.Sprintf("is %d bytes, at most %d allowed", len(s), v.l.MaxIDBytes))
	case !utf8.ValidString(s):
		return invalid(field, "is not valid UTF-8")
	}
	return nil
}

func (v *validator) ids(field string, ids []string, max int, required bool) error {
	if required && len(ids) == 0 {
		return invalid(field, "must not be empty")
	}
	if len(ids) > max {
		return invalid(field, fmt.Sprintf("has %d entries, at most %d allowed", len(ids), max))
	}
	for i, id := range ids {
		if err := v.id(field+"["+strconv.Itoa(i)+"]", id); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) count(c int32) error {
	if c <= 0 || int(c) > v.l.MaxCount {
		return invalid("count", fmt.Sprintf("must be 1..%d, got %d", v.l.MaxCount, c))
	}
	return nil
}

func (v *validator) events(evs []*recsysv1.Event) error {
	if len(evs) == 0 {
		return invalid("events", "must not be empty")
	}
	if len(evs) > v.l.MaxBatch {
		return invalid("events", fmt.Sprintf("has %d events, at most %d per batch", len(evs), v.l.MaxBatch))
	}
	latest := v.now().Add(v.l.MaxFutureSkew)
	for i, e := range evs {
		f := "events[" + strconv.Itoa(i) + "]."
		if e == nil {
			return invalid(f[:len(f)-1], "must not be null")
		}
		if err := v.id(f+"event_id", e.GetEventId()); err != nil {
			return err
		}
		if err := v.id(f+"user_id", e.GetUserId()); err != nil {
			return err
		}
		if err := v.id(f+"item_id", e.GetItemId()); err != nil {
			return err
		}
		switch t := e.GetType(); t {
		case recsysv1.EventType_EVENT_TYPE_VIEW, recsysv1.EventType_EVENT_TYPE_ADD_TO_CART, recsysv1.EventType_EVENT_TYPE_PURCHASE:
			if e.GetWeight() != 0 {
				return invalid(f+"weight", "only EVENT_TYPE_CUSTOM events carry a weight")
			}
		case recsysv1.EventType_EVENT_TYPE_CUSTOM:
			w := e.GetWeight()
			if !(w > 0) || w > v.l.MaxCustomValue || math.IsInf(float64(w), 0) {
				return invalid(f+"weight", fmt.Sprintf("must be > 0 and <= %v for EVENT_TYPE_CUSTOM, got %v", v.l.MaxCustomValue, w))
			}
		case recsysv1.EventType_EVENT_TYPE_UNSPECIFIED:
			return invalid(f+"type", "must be set")
		default:
			return invalid(f+"type", fmt.Sprintf("unknown event type %d", int32(t)))
		}
		if q := e.GetQuantity(); q < 0 || q > v.l.MaxQuantity {
			return invalid(f+"quantity", fmt.Sprintf("must be 0..%d, got %d", v.l.MaxQuantity, q))
		}
		if ts := e.GetTimestamp(); ts != nil {
			if err := ts.CheckValid(); err != nil {
				return invalid(f+"timestamp", err.Error())
			}
			t := ts.AsTime()
			if t.Before(minEventTime) {
				return invalid(f+"timestamp", "is before 2000-01-01")
			}
			if t.After(latest) {
				return invalid(f+"timestamp", fmt.Sprintf("is more than %v in the future", v.l.MaxFutureSkew))
			}
		}
	}
	return nil
}

func (v *validator) items(items []*recsysv1.Item) error {
	if len(items) == 0 {
		return invalid("items", "must not be empty")
	}
	if len(items) > v.l.MaxBatch {
		return invalid("items", fmt.Sprintf("has %d items, at most %d per batch", len(items), v.l.MaxBatch))
	}
	for i, it := range items {
		f := "items[" + strconv.Itoa(i) + "]."
		if it == nil {
			return invalid(f[:len(f)-1], "must not be null")
		}
		if err := v.id(f+"item_id", it.GetItemId()); err != nil {
			return err
		}
		if c := it.GetCategory(); len(c) > v.l.MaxIDBytes || !utf8.ValidString(c) {
			return invalid(f+"category", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", v.l.MaxIDBytes))
		}
		if p := it.GetPrice(); p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
			return invalid(f+"price", fmt.Sprintf("must be a finite number >= 0, got %v", p))
		}
		if ts := it.GetCreatedAt(); ts != nil {
			if err := ts.CheckValid(); err != nil {
				return invalid(f+"created_at", err.Error())
			}
		}
	}
	return nil
}
