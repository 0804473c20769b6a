package ctl

import (
	"context"
	"errors"
	"flag"
	"io"
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// BlocklistCommand runs `blocklist get`, or `blocklist set|add|remove
// [--items a,b] [--categories x,y]`.
func BlocklistCommand(ctx context.Context, c *Client, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: recsysctl blocklist get | blocklist set|add|remove [--items a,b] [--categories x,y]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	op := args[0]
	fs := flag.NewFlagSet("blocklist "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	items := fs.String("items", "", "comma-separated item ids")
	cats := fs.String("categories", "", "comma-separated categories")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New(usage)
	}
	ids, categories := splitList(*items), splitList(*cats)
	switch op {
	case "get":
		res, err := c.Catalog.GetBlocklist(ctx, &recsysv1.GetBlocklistRequest{})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	case "set":
		res, err := c.Catalog.SetBlocklist(ctx, &recsysv1.SetBlocklistRequest{ItemIds: ids, Categories: categories})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	case "add":
		res, err := c.Catalog.AddToBlocklist(ctx, &recsysv1.AddToBlocklistRequest{ItemIds: ids, Categories: categories})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	case "remove":
		res, err := c.Catalog.RemoveFromBlocklist(ctx, &recsysv1.RemoveFromBlocklistRequest{ItemIds: ids, Categories: categories})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	}
	return errors.New(usage)
}

// CategoriesCommand runs `categories list`, or `categories upsert NAME...
// [--repeatable-after D]`.
func CategoriesCommand(ctx context.Context, c *Client, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: recsysctl categories list | categories upsert [--repeatable-after 720h] NAME..."
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "list":
		if len(args) != 1 {
			return errors.New(usage)
		}
		res, err := c.Catalog.ListCategories(ctx, &recsysv1.ListCategoriesRequest{})
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	case "upsert":
		fs := flag.NewFlagSet("categories upsert", flag.ContinueOnError)
		fs.SetOutput(stderr)
		after := fs.Duration("repeatable-after", 0, "bought items of the category may return after this long (0: never)")
		names, err := ParseArgs(fs, args[1:])
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return errors.New(usage)
		}
		req := &recsysv1.UpsertCategoriesRequest{}
		for _, name := range names {
			cat := &recsysv1.Category{Name: name}
			if *after != 0 {
				cat.RepeatableAfter = durationpb.New(*after)
			}
			req.Categories = append(req.Categories, cat)
		}
		res, err := c.Catalog.UpsertCategories(ctx, req)
		if err != nil {
			return err
		}
		return PrintJSON(stdout, res)
	}
	return errors.New(usage)
}

// ParseArgs parses flags that may come before or after the positional
// arguments (`upsert food --repeatable-after 720h` as well as `upsert
// --repeatable-after 720h food`) and returns the positional arguments. The
// standard flag package stops at the first non-flag, which would make
// everything after it positional.
func ParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string // after "--" everything is positional
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for len(args) > 0 {
		if len(args[0]) < 2 || args[0][0] != '-' { // "" and "-" are positional too
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
	}
	return append(pos, tail...), nil
}

// OptOutCommand runs `opt-out USER [--off]`.
func OptOutCommand(ctx context.Context, c *Client, user string, off bool, stdout io.Writer) error {
	res, err := c.Events.SetOptOut(ctx, &recsysv1.SetOptOutRequest{UserId: user, OptedOut: !off})
	if err != nil {
		return err
	}
	return PrintJSON(stdout, res)
}
