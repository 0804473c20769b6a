package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/recsys-dev/recsys/client"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// runBlocklist runs blocklist get|set|add|remove.
func runBlocklist(ctx context.Context, x *invocation) error {
	op := strings.TrimPrefix(x.cmd.name, "blocklist ")
	var items, cats *string
	if op != "get" {
		items = x.fs.String("items", "", "comma-separated item ids")
		cats = x.fs.String("categories", "", "comma-separated categories")
	}
	if _, err := x.exactly(0); err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	var res proto.Message
	switch op {
	case "get":
		res, err = c.Catalog.GetBlocklist(ctx, &recsysv1.GetBlocklistRequest{})
	case "set":
		res, err = c.Catalog.SetBlocklist(ctx, &recsysv1.SetBlocklistRequest{ItemIds: splitList(*items), Categories: splitList(*cats)})
	case "add":
		res, err = c.Catalog.AddToBlocklist(ctx, &recsysv1.AddToBlocklistRequest{ItemIds: splitList(*items), Categories: splitList(*cats)})
	case "remove":
		res, err = c.Catalog.RemoveFromBlocklist(ctx, &recsysv1.RemoveFromBlocklistRequest{ItemIds: splitList(*items), Categories: splitList(*cats)})
	}
	if err != nil {
		return err
	}
	return x.printJSON(res)
}

func runCategoriesList(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 0, func(c *client.Client, _ []string) (proto.Message, error) {
		return c.Catalog.ListCategories(ctx, &recsysv1.ListCategoriesRequest{})
	})
}

func runCategoriesUpsert(ctx context.Context, x *invocation) error {
	after := x.fs.Duration("repeatable-after", 0, "bought items of the category may be recommended again after this long (0: never)")
	names, err := x.atLeast(1)
	if err != nil {
		return err
	}
	req := &recsysv1.UpsertCategoriesRequest{}
	for _, name := range names {
		cat := &recsysv1.Category{Name: name}
		if *after != 0 {
			cat.RepeatableAfter = durationpb.New(*after)
		}
		req.Categories = append(req.Categories, cat)
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := c.Catalog.UpsertCategories(ctx, req)
	if err != nil {
		return err
	}
	return x.printJSON(res)
}

func runProfile(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		return c.Events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: args[0]})
	})
}

func runDeleteUser(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		return c.Events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: args[0]})
	})
}

func runOptOut(ctx context.Context, x *invocation) error {
	off := x.fs.Bool("off", false, "opt the user back in")
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		return c.Events.SetOptOut(ctx, &recsysv1.SetOptOutRequest{UserId: args[0], OptedOut: !*off})
	})
}

func runModelGet(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 0, func(c *client.Client, _ []string) (proto.Message, error) {
		return c.Models.GetModel(ctx, &recsysv1.GetModelRequest{})
	})
}

func runModelList(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 0, func(c *client.Client, _ []string) (proto.Message, error) {
		return c.Models.ListModels(ctx, &recsysv1.ListModelsRequest{})
	})
}

func runModelActivate(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		return c.Models.ActivateModel(ctx, &recsysv1.ActivateModelRequest{Version: args[0]})
	})
}

func runAttributesList(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 0, func(c *client.Client, _ []string) (proto.Message, error) {
		return c.Catalog.ListAttributes(ctx, &recsysv1.ListAttributesRequest{})
	})
}

// runAttributesDeclare declares NAME:TYPE pairs (TYPE string or number).
func runAttributesDeclare(ctx context.Context, x *invocation) error {
	pairs, err := x.atLeast(1)
	if err != nil {
		return err
	}
	req := &recsysv1.DeclareAttributesRequest{}
	for _, p := range pairs {
		name, typ, _ := strings.Cut(p, ":")
		t, ok := map[string]recsysv1.AttributeType{
			"string": recsysv1.AttributeType_ATTRIBUTE_TYPE_STRING, "number": recsysv1.AttributeType_ATTRIBUTE_TYPE_NUMBER,
		}[typ]
		if !ok {
			return x.usageError("%q: want NAME:string or NAME:number", p)
		}
		req.Attributes = append(req.Attributes, &recsysv1.AttributeDeclaration{Name: name, Type: t})
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := c.Catalog.DeclareAttributes(ctx, req)
	if err != nil {
		return err
	}
	return x.printJSON(res)
}

func runBoostsGet(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 0, func(c *client.Client, _ []string) (proto.Message, error) {
		return c.Catalog.GetBoostRules(ctx, &recsysv1.GetBoostRulesRequest{})
	})
}

// runBoostsSet replaces the boost rules with FILE, JSON of the shape
// `boosts get` prints ({"rules":[...],"maxAdjustment":...}; its "version"
// is the stored rules' and is ignored).
func runBoostsSet(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		b, err := os.ReadFile(args[0])
		if err != nil {
			return nil, err
		}
		got := &recsysv1.GetBoostRulesResponse{}
		if err := protojson.Unmarshal(b, got); err != nil {
			return nil, fmt.Errorf("%s: not boost rules in JSON ({\"rules\":[...],\"maxAdjustment\":1}): %w", args[0], err)
		}
		return c.Catalog.SetBoostRules(ctx, &recsysv1.SetBoostRulesRequest{Rules: got.GetRules(), MaxAdjustment: got.GetMaxAdjustment()})
	})
}
