package server

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Profiles stores events and serves profiles (implemented by
// *profile.Store).
type Profiles interface {
	Record(ctx context.Context, events []event.Event) (profile.RecordResult, error)
	Load(ctx context.Context, userID string) (profile.Profile, error)
	Delete(ctx context.Context, userID string) (int, error)
	SetOptOut(ctx context.Context, userID string, optedOut bool) error
}

// CatalogView looks items up in the in-process catalog.
type CatalogView interface {
	Lookup(id string) (catalog.Item, bool)
}

// SearchMatcher matches a search query against the catalog's category
// names and attribute values (implemented by *catalog.SearchIndex).
type SearchMatcher interface {
	Match(query string) []catalog.SearchMatch
}

type eventService struct {
	recsysv1.UnimplementedEventServiceServer
	log       *slog.Logger
	attr      Attributor     // may be nil: no attribution
	outcomes  OutcomeCounter // may be nil
	profiles  Profiles
	catalog   CatalogView     // may be nil
	search    SearchMatcher   // may be nil
	regional  RegionalCounter // may be nil
	weighting event.Weighting
	segments  profile.SegmentConfig
	now       func() time.Time
	metrics   *metrics.Set
	// forget removes the user's experiment totals (nil: none kept).
	forget func(ctx context.Context, userID string) error
	// erasers remove what other stores keep about a user (the push
	// campaigns' groups).
	erasers []userEraser
}

// userEraser removes what a store keeps about a user (implemented by *pushsched.Scheduler).
type userEraser interface {
	DeleteUser(ctx context.Context, userID string) (int, error)
}

var _ userEraser = (*pushsched.Scheduler)(nil)

// erasersOf returns the parts of d that keep users besides the profiles,
// the attribution records and the experiment totals.
func erasersOf(d Deps) []userEraser {
	var out []userEraser
	if e, ok := d.Pusher.(userEraser); ok {
		out = append(out, e)
	}
	return out
}

func (s *eventService) RecordEvents(ctx context.Context, req *recsysv1.RecordEventsRequest) (*recsysv1.RecordEventsResponse, error) {
	now := s.now()
	evs := make([]event.Event, len(req.GetEvents()))
	for i, e := range req.GetEvents() {
		evs[i] = fromProtoEvent(e, now)
		if evs[i].Type == event.Search && s.search != nil {
			// The query is matched here and dropped: only its matches
			// reach the store.
			var keys []string
			for _, m := range s.search.Match(e.GetQuery()) {
				keys = append(keys, event.SearchMatch(m.Attribute, m.Value))
			}
			evs[i].Matches = strings.Join(keys, "\n")
		}
	}
	res, err := s.profiles.Record(ctx, evs)
	if err != nil {
		return nil, err
	}
	s.countRegions(ctx, evs, req.GetEvents(), res.Fresh)
	attributeEvents(ctx, s.log, s.attr, s.outcomes, evs, req.GetEvents(), res.Fresh)
	s.metrics.Recorded(evs, res.Duplicates)
	return &recsysv1.RecordEventsResponse{Accepted: int32(res.Accepted), Duplicates: int32(res.Duplicates)}, nil
}

// RegionalCounter counts the popularity of events per region.
type RegionalCounter interface {
	Add(ctx context.Context, evs []event.Event, regions []string, fresh []bool) error
}

var _ RegionalCounter = (*profile.Regional)(nil)

// countRegions counts the fresh events that carry a region. The events
// are stored already, so a failure is logged, not returned: a retry would
// find them duplicates and count nothing.
func (s *eventService) countRegions(ctx context.Context, evs []event.Event, pevs []*recsysv1.Event, fresh []bool) {
	if s.regional == nil {
		return
	}
	var regions []string
	for i, e := range pevs {
		if r := e.GetRegion(); r != "" {
			if regions == nil {
				regions = make([]string, len(pevs))
			}
			regions[i] = r
		}
	}
	if regions == nil {
		return
	}
	if err := s.regional.Add(ctx, evs, regions, fresh); err != nil {
		s.log.WarnContext(ctx, "regional popularity not counted", "events", len(evs), "err", err)
	}
}

// fromProtoEvent converts a validated event; an unset timestamp means now.
func fromProtoEvent(e *recsysv1.Event, now time.Time) event.Event {
	t := now
	if ts := e.GetTimestamp(); ts != nil {
		t = ts.AsTime()
	}
	ev := event.Event{
		ID:       e.GetEventId(),
		UserID:   e.GetUserId(),
		ItemID:   e.GetItemId(),
		Type:     event.Type(e.GetType()),
		Time:     t,
		Quantity: e.GetQuantity(),
		Weight:   e.GetWeight(),
		Category: e.GetCategory(),
	}
	if ev.Type == event.Rating {
		ev.Weight = e.GetRating() // the store carries a rating in the weight
	}
	return ev
}

func (s *eventService) GetProfile(ctx context.Context, req *recsysv1.GetProfileRequest) (*recsysv1.GetProfileResponse, error) {
	p, err := s.profiles.Load(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	now := s.now()
	weights := p.ItemWeights(s.weighting, now)
	seg := p.Segment(s.segments, now)
	out := &recsysv1.Profile{
		UserId:        req.GetUserId(),
		PurchaseCount: p.PurchaseCount,
		Items:         make([]*recsysv1.ProfileItem, len(weights)),
		OptedOut:      p.OptedOut,
		Segment: &recsysv1.Segment{
			Lifecycle:        recsysv1.Lifecycle(seg.Lifecycle), // the numbers match
			PurchasesPer_30D: seg.PerMonth,
			Spend:            seg.Spend,
			Purchases:        seg.Purchases,
		},
	}
	if !p.FirstSeen.IsZero() {
		out.FirstSeen = timestamppb.New(p.FirstSeen)
	}
	if !p.LastSeen.IsZero() {
		out.LastSeen = timestamppb.New(p.LastSeen)
	}
	byCategory := map[string]float64{}
	var total float64
	for i, w := range weights {
		out.Items[i] = &recsysv1.ProfileItem{
			ItemId:        w.ItemID,
			Weight:        w.Weight,
			LastEventTime: timestamppb.New(w.LastTime),
			EventCount:    int32(w.Events),
		}
		if s.catalog != nil {
			if it, ok := s.catalog.Lookup(w.ItemID); ok && it.Category != "" {
				byCategory[it.Category] += w.Weight
				total += w.Weight
			}
		}
	}
	if total > 0 {
		for c, w := range byCategory {
			out.CategoryAffinities = append(out.CategoryAffinities, &recsysv1.CategoryAffinity{Category: c, Affinity: w / total})
		}
		sort.Slice(out.CategoryAffinities, func(i, j int) bool {
			a, b := out.CategoryAffinities[i], out.CategoryAffinities[j]
			return a.Affinity > b.Affinity || (a.Affinity == b.Affinity && a.Category < b.Category)
		})
	}
	for _, pu := range p.Purchased {
		out.PurchasedItemIds = append(out.PurchasedItemIds, pu.ItemID)
	}
	for _, d := range p.Dismissed {
		out.Dismissals = append(out.Dismissals, &recsysv1.Dismissal{ItemId: d.ItemID, Category: d.Category,
			Time: timestamppb.New(d.Time), LowRating: d.LowRating})
	}
	for _, a := range p.Searches {
		out.SearchAffinities = append(out.SearchAffinities, &recsysv1.SearchAffinity{Attribute: a.Attribute, Value: a.Value, Count: a.Count})
	}
	return &recsysv1.GetProfileResponse{Profile: out}, nil
}

func (s *eventService) SetOptOut(ctx context.Context, req *recsysv1.SetOptOutRequest) (*recsysv1.SetOptOutResponse, error) {
	if err := s.profiles.SetOptOut(ctx, req.GetUserId(), req.GetOptedOut()); err != nil {
		return nil, err
	}
	return &recsysv1.SetOptOutResponse{OptedOut: req.GetOptedOut()}, nil
}

func (s *eventService) DeleteUser(ctx context.Context, req *recsysv1.DeleteUserRequest) (*recsysv1.DeleteUserResponse, error) {
	n, err := s.profiles.Delete(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	if s.attr != nil {
		m, err := s.attr.DeleteUser(ctx, req.GetUserId())
		if err != nil {
			return nil, err
		}
		n += m
	}
	for _, e := range s.erasers { // memberships, not keys: not counted
		if _, err := e.DeleteUser(ctx, req.GetUserId()); err != nil {
			return nil, err
		}
	}
	if s.forget != nil {
		if err := s.forget(ctx, req.GetUserId()); err != nil {
			return nil, err
		}
	}
	return &recsysv1.DeleteUserResponse{DeletedKeys: int32(n)}, nil
}
