// Command recsysctl is the command-line client of recsysd, and the home of the
// demo and the synthetic shop generator.
//
//	recsysctl [--addr HOST:PORT] events import FILE.csv
//	recsysctl recommend USER [--count N] [--exclude a,b] [--context-item ID] [filter flags]
//	recsysctl similar ITEM [--count N] [filter flags]
//	recsysctl bought-together ITEM [ITEM…] [--count N] [filter flags]
//	recsysctl profile USER
//	recsysctl delete-user USER
//	recsysctl opt-out USER [--off]
//	recsysctl blocklist get|set|add|remove [--items a,b] [--categories x,y]
//	recsysctl categories list | upsert [--repeatable-after D] NAME...
//	recsysctl catalog import FILE.csv
//	recsysctl model get|list|activate VERSION
//	recsysctl generate --users N --items N --events N --seed S --out FILE.csv
//	recsysctl token new ROLES NAME
//	recsysctl demo
//
// Answers are printed as JSON on stdout; progress goes to stderr. Calls
// carry --token (RECSYS_TOKEN) as a bearer token; --tls, --server-ca,
// --client-cert/--client-key and --server-name set up TLS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/recsys-dev/recsys/internal/ctl"
	"github.com/recsys-dev/recsys/internal/demo"
	"github.com/recsys-dev/recsys/internal/envflag"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "recsysctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: recsysctl [--addr HOST:PORT] [--timeout D] COMMAND ...

commands:
  events import FILE.csv       send events (user_id,item_id,event_type,timestamp) in batches
  catalog import FILE.csv      send items (item_id,category,price,available,created_at)
  recommend USER               [--count N] [--exclude a,b] [--context-item ID] [--placement P]
                               [--max-per-category N] [filter flags]
  similar ITEM                 [--count N] [--exclude a,b] [filter flags]
  bought-together ITEM...      [--count N] [--exclude a,b] [filter flags]: complements of an item or a cart
      filter flags: [--categories a,b] [--exclude-categories a,b] [--min-price X] [--max-price Y]
                    [--include-unavailable] [--member-tier T] [--include-purchased]
  profile USER                 the profile the service built
  delete-user USER             remove every key of the user
  opt-out USER [--off]         opt the user out of personalization (--off: back in)
  push --users u1,u2 | --segment new|active|dormant|any
                               push picks, one JSON line per user: [--count 5] [--min-score X]
                               [--dedup-window 168h] [--exclude a,b] [--max-per-category N]
                               [--min-purchases-per-30d F] [--min-spend F] [--max-users N]
                               (raise --timeout for a large segment)
  blocklist get                the global blocklist
  blocklist set|add|remove     [--items a,b] [--categories x,y]
  categories list              category settings
  categories upsert NAME...    [--repeatable-after 720h] (consumables may be recommended again)
  model get                    the serving model
  model list                   published versions, newest first
  model activate VERSION       serve a kept version (rollback)
  generate                     write a synthetic shop: --users --items --events --seed --out
  token new ROLES NAME         a fresh random token and its line for recsysd's --tokens-file
                               (ROLES: pages, events, push, operator, joined by '+')
  demo                         the whole product on the embedded store, in about a minute

connection flags (each also from RECSYS_<FLAG>, e.g. RECSYS_TOKEN):
  --token T                    bearer token of the caller
  --tls                        TLS, verifying the server with the system roots
  --server-ca FILE             TLS, verifying the server with this CA (PEM)
  --client-cert FILE --client-key FILE   client certificate (PEM)
  --server-name NAME           name to verify the server's certificate against
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recsysctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	addr := fs.String("addr", "127.0.0.1:50051", "recsysd gRPC address")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each RPC")
	var conn ctl.ConnOptions
	fs.StringVar(&conn.Token, "token", "", "bearer token")
	fs.BoolVar(&conn.TLS, "tls", false, "TLS with the system roots")
	fs.StringVar(&conn.CAFile, "server-ca", "", "CA (PEM) of the server's certificate")
	fs.StringVar(&conn.CertFile, "client-cert", "", "client certificate (PEM)")
	fs.StringVar(&conn.KeyFile, "client-key", "", "client key (PEM)")
	fs.StringVar(&conn.ServerName, "server-name", "", "name the server's certificate must carry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envflag.Fill(fs, "RECSYS", getenv); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "generate":
		return ctl.GenerateCommand(ctx, rest, stdout, stderr)
	case "demo":
		return demo.Command(ctx, rest, stdout, stderr)
	case "token":
		return ctl.TokenCommand(rest, stdout)
	}

	dialOpts, err := conn.DialOptions()
	if err != nil {
		return err
	}
	c, err := ctl.Dial(*addr, dialOpts...)
	if err != nil {
		return err
	}
	defer c.Close()
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return f(ctx)
	}

	switch cmd {
	case "events", "catalog":
		if len(rest) != 2 || rest[0] != "import" {
			return fmt.Errorf("usage: recsysctl %s import FILE.csv", cmd)
		}
		imp := ctl.ImportEvents
		if cmd == "catalog" {
			imp = ctl.ImportCatalog
		}
		st, err := imp(ctx, c, rest[1], *timeout, stderr)
		if perr := ctl.PrintStats(stdout, st); perr != nil && err == nil {
			err = perr
		}
		return err
	case "recommend", "similar", "bought-together":
		sub := flag.NewFlagSet(cmd, flag.ContinueOnError)
		sub.SetOutput(stderr)
		var o ctl.RecommendOptions
		sub.IntVar(&o.Count, "count", 10, "items to return")
		sub.StringVar(&o.Exclude, "exclude", "", "comma-separated item ids to leave out")
		sub.StringVar(&o.Filter.Categories, "categories", "", "only these comma-separated categories")
		sub.StringVar(&o.Filter.ExcludeCategories, "exclude-categories", "", "never these comma-separated categories")
		sub.StringVar(&o.Filter.MinPrice, "min-price", "", "lowest price (inclusive)")
		sub.StringVar(&o.Filter.MaxPrice, "max-price", "", "highest price (inclusive)")
		sub.BoolVar(&o.Filter.IncludeUnavailable, "include-unavailable", false, "return unavailable items too")
		sub.StringVar(&o.Filter.MemberTier, "member-tier", "", "the user's membership tier (admits member-only items)")
		if cmd == "recommend" {
			sub.StringVar(&o.ContextItem, "context-item", "", "item the page is about")
			sub.StringVar(&o.Placement, "placement", "", `slot name on the page ("trending" asks for trending items)`)
			sub.IntVar(&o.MaxPerCategory, "max-per-category", 0, "at most this many items per category (0: server default)")
			sub.BoolVar(&o.Filter.IncludePurchased, "include-purchased", false, "return items the user bought too")
		}
		if cmd == "bought-together" {
			items, err := someArgs(sub, rest, "bought-together ITEM [ITEM...] [--count N]")
			if err != nil {
				return err
			}
			return call(func(ctx context.Context) error {
				res, err := c.BoughtTogether(ctx, items, o)
				if err != nil {
					return err
				}
				return ctl.PrintJSON(stdout, res)
			})
		}
		id, err := oneArg(sub, rest, cmd+" ID")
		if err != nil {
			return err
		}
		return call(func(ctx context.Context) error {
			if cmd == "similar" {
				res, err := c.Similar(ctx, id, o)
				if err != nil {
					return err
				}
				return ctl.PrintJSON(stdout, res)
			}
			res, err := c.Recommend(ctx, id, o)
			if err != nil {
				return err
			}
			return ctl.PrintJSON(stdout, res)
		})
	case "profile":
		id, err := oneArg(flag.NewFlagSet(cmd, flag.ContinueOnError), rest, "profile USER")
		if err != nil {
			return err
		}
		return call(func(ctx context.Context) error {
			res, err := c.Events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: id})
			if err != nil {
				return err
			}
			return ctl.PrintJSON(stdout, res)
		})
	case "delete-user":
		id, err := oneArg(flag.NewFlagSet(cmd, flag.ContinueOnError), rest, "delete-user USER")
		if err != nil {
			return err
		}
		return call(func(ctx context.Context) error {
			res, err := c.Events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: id})
			if err != nil {
				return err
			}
			return ctl.PrintJSON(stdout, res)
		})
	case "model":
		return call(func(ctx context.Context) error { return ctl.ModelCommand(ctx, c, rest, stdout) })
	case "blocklist":
		return call(func(ctx context.Context) error { return ctl.BlocklistCommand(ctx, c, rest, stdout, stderr) })
	case "categories":
		return call(func(ctx context.Context) error { return ctl.CategoriesCommand(ctx, c, rest, stdout, stderr) })
	case "push":
		return call(func(ctx context.Context) error { return ctl.PushCommand(ctx, c, rest, stdout, stderr) })
	case "opt-out":
		sub := flag.NewFlagSet(cmd, flag.ContinueOnError)
		sub.SetOutput(stderr)
		off := sub.Bool("off", false, "opt the user back in")
		id, err := oneArg(sub, rest, "opt-out USER [--off]")
		if err != nil {
			return err
		}
		return call(func(ctx context.Context) error { return ctl.OptOutCommand(ctx, c, id, *off, stdout) })
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

// someArgs parses sub and returns one or more ids given before or after the
// flags.
func someArgs(sub *flag.FlagSet, args []string, use string) ([]string, error) {
	ids, err := ctl.ParseArgs(sub, args)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("usage: recsysctl %s", use)
	}
	return ids, nil
}

// oneArg parses sub's flags around exactly one positional argument.
func oneArg(sub *flag.FlagSet, args []string, use string) (string, error) {
	// Allow the id before or after the flags.
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if err := sub.Parse(args); err != nil {
		return "", err
	}
	if id == "" && sub.NArg() == 1 {
		id = sub.Arg(0)
	} else if sub.NArg() != 0 {
		return "", fmt.Errorf("usage: recsysctl %s", use)
	}
	if id == "" {
		return "", fmt.Errorf("usage: recsysctl %s", use)
	}
	return id, nil
}
