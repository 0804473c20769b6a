// Package ctl implements the commands of recsysctl, the operator's client of
// a running recsysd: import events, ask for recommendations, inspect and
// delete profiles, manage model versions. Every answer is printed as JSON.
package ctl

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Client bundles the service clients of one connection.
type Client struct {
	conn    *grpc.ClientConn
	Rec     recsysv1.RecommendationServiceClient
	Events  recsysv1.EventServiceClient
	Catalog recsysv1.CatalogServiceClient
	Models  recsysv1.ModelServiceClient
}

// Dial connects to a recsysd at addr (plaintext; see the README for TLS).
func Dial(addr string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return NewClient(conn), nil
}

// NewClient wraps an existing connection.
func NewClient(conn *grpc.ClientConn) *Client {
	return &Client{
		conn:    conn,
		Rec:     recsysv1.NewRecommendationServiceClient(conn),
		Events:  recsysv1.NewEventServiceClient(conn),
		Catalog: recsysv1.NewCatalogServiceClient(conn),
		Models:  recsysv1.NewModelServiceClient(conn),
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// PrintJSON writes m as indented JSON with a trailing newline.
func PrintJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// RecommendOptions are the optional parts of a Recommend call.
type RecommendOptions struct {
	Count          int
	Exclude        string // comma-separated item ids
	ContextItem    string
	Placement      string
	MaxPerCategory int
	Filter         FilterOptions
}

// FilterOptions are the parts of a Filter, as command-line flags give them.
type FilterOptions struct {
	Categories         string // comma-separated categories to include
	ExcludeCategories  string // comma-separated categories to leave out
	MinPrice, MaxPrice string // empty: no bound
	IncludeUnavailable bool
	MemberTier         string
	IncludePurchased   bool
}

// Proto returns the filter, or nil when no option is set.
func (o FilterOptions) Proto() (*recsysv1.Filter, error) {
	if o == (FilterOptions{}) {
		return nil, nil
	}
	f := &recsysv1.Filter{
		IncludeCategories: splitList(o.Categories),
		ExcludeCategories: splitList(o.ExcludeCategories),
		MemberTier:        o.MemberTier,
		IncludePurchased:  o.IncludePurchased,
	}
	if o.IncludeUnavailable {
		f.Availability = recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE
	}
	for _, b := range []struct {
		flag, v string
		dst     **float64
	}{{"--min-price", o.MinPrice, &f.MinPrice}, {"--max-price", o.MaxPrice, &f.MaxPrice}} {
		if b.v == "" {
			continue
		}
		x, err := strconv.ParseFloat(b.v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.flag, err)
		}
		*b.dst = &x
	}
	return f, nil
}

// Recommend asks for a user's recommendations.
func (c *Client) Recommend(ctx context.Context, user string, o RecommendOptions) (*recsysv1.RecommendResponse, error) {
	f, err := o.Filter.Proto()
	if err != nil {
		return nil, err
	}
	req := &recsysv1.RecommendRequest{UserId: user, Count: int32(o.Count), ExcludeItemIds: splitList(o.Exclude),
		Filter: f, MaxPerCategory: int32(o.MaxPerCategory)}
	if o.ContextItem != "" || o.Placement != "" {
		req.Context = &recsysv1.RequestContext{ContextItemId: o.ContextItem, Placement: o.Placement}
	}
	return c.Rec.Recommend(ctx, req)
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Similar asks for an item's neighbours.
func (c *Client) Similar(ctx context.Context, item string, o RecommendOptions) (*recsysv1.SimilarItemsResponse, error) {
	f, err := o.Filter.Proto()
	if err != nil {
		return nil, err
	}
	return c.Rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: item, Count: int32(o.Count), ExcludeItemIds: splitList(o.Exclude), Filter: f})
}

// BoughtTogether asks for the items bought together with one item or a
// cart.
func (c *Client) BoughtTogether(ctx context.Context, items []string, o RecommendOptions) (*recsysv1.BoughtTogetherResponse, error) {
	f, err := o.Filter.Proto()
	if err != nil {
		return nil, err
	}
	return c.Rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: items, Count: int32(o.Count), ExcludeItemIds: splitList(o.Exclude), Filter: f})
}

// ModelCommand runs `model get|list|activate VERSION`.
func ModelCommand(ctx context.Context, c *Client, args []string, stdout io.Writer) error {
	switch {
	case len(args) == 1 && args[0] == "get":
		res, err := c.Models.GetModel(ctx, &recsysv1.GetModelRequest{})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	case len(args) == 1 && args[0] == "list":
		res, err := c.Models.ListModels(ctx, &recsysv1.ListModelsRequest{})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	case len(args) == 2 && args[0] == "activate":
		res, err := c.Models.ActivateModel(ctx, &recsysv1.ActivateModelRequest{Version: args[1]})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	}
	return fmt.Errorf("usage: recsysctl model get | model list | model activate VERSION")
}

// Conn returns the underlying connection (for health checks).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }
