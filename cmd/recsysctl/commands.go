package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/cli"
)

// A command is one recsysctl subcommand: the words that select it, its
// usage line and summary (the help pages are made from them), and run.
type command struct {
	name    string // "recommend", "events import": the words that select it
	args    string // what follows the name in the usage line: "USER"
	summary string // one line, for the command list and the help page
	// local commands never call recsysd (the help page then omits the
	// connection flags).
	local bool
	run   func(ctx context.Context, x *invocation) error
}

// commands is every subcommand, in the order `recsysctl --help` lists them.
// Adding a command is a line here and its run function (see the package
// comment).
var commands = []command{
	{name: "recommend", args: "USER", summary: "recommendations for a user", run: runRecommend},
	{name: "similar", args: "ITEM", summary: "items similar to an item", run: runSimilar},
	{name: "bought-together", args: "ITEM...", summary: "complements of an item or a cart", run: runBoughtTogether},
	{name: "rank", args: "USER ITEM...", summary: "order a candidate list for a user", run: runRank},
	{name: "push", args: "", summary: "push picks for --users or a --segment, one JSON line per user", run: runPush},
	{name: "events import", args: "FILE", summary: "send events (user_id,item_id,event_type,timestamp) in batches", run: runEventsImport},
	{name: "catalog import", args: "FILE.csv", summary: "send items (item_id,category,price,available,created_at)", run: runCatalogImport},
	{name: "profile", args: "USER", summary: "the profile the service built", run: runProfile},
	{name: "delete-user", args: "USER", summary: "remove every key of the user", run: runDeleteUser},
	{name: "opt-out", args: "USER", summary: "opt the user out of personalization (--off: back in)", run: runOptOut},
	{name: "blocklist get", summary: "the global blocklist", run: runBlocklist},
	{name: "blocklist set", summary: "replace the blocklist with --items and --categories", run: runBlocklist},
	{name: "blocklist add", summary: "add --items and --categories to the blocklist", run: runBlocklist},
	{name: "blocklist remove", summary: "remove --items and --categories from the blocklist", run: runBlocklist},
	{name: "categories list", summary: "category settings", run: runCategoriesList},
	{name: "categories upsert", args: "NAME...", summary: "set categories (--repeatable-after: consumables may return)", run: runCategoriesUpsert},
	{name: "attributes list", summary: "declared custom item attributes", run: runAttributesList},
	{name: "attributes declare", args: "NAME:TYPE...", summary: "declare custom item attributes (TYPE string or number)", run: runAttributesDeclare},
	{name: "boosts get", summary: "the boost and bury rules, as JSON that boosts set takes", run: runBoostsGet},
	{name: "boosts set", args: "FILE.json", summary: "replace the boost and bury rules ({\"rules\":[...],\"maxAdjustment\":1})", run: runBoostsSet},
	{name: "model get", summary: "the serving model", run: runModelGet},
	{name: "model list", summary: "published versions, newest first", run: runModelList},
	{name: "model activate", args: "VERSION", summary: "serve a kept version (rollback)", run: runModelActivate},
	{name: "model report", args: "[VERSION]", summary: "the HTML evaluation report stored with a version (default: the serving one); -o FILE", run: runModelReport},
	{name: "experiment create", args: "NAME", summary: "start an A/B experiment: --placement, --arms NAME:WEIGHT[:popular|:cap=N|:explore=F|:cold=popular|trending|:model=VERSION],...", run: runExperimentCreate},
	{name: "experiment update", args: "NAME", summary: "change a running experiment's --share, --arms weights and settings, --control", run: runExperimentUpdate},
	{name: "experiment list", summary: "experiments, running first", run: runExperimentList},
	{name: "experiment stop", args: "NAME", summary: "stop an experiment (its numbers stay)", run: runExperimentStop},
	{name: "report", summary: "what answers led to, --from DATE [--to DATE] [--experiment NAME] [--campaign ID]: tables per metric and arm with 95 % intervals, lift, p-value and a verdict (--json: the raw answer)", run: runReport},
	{name: "generate", summary: "write a synthetic shop as events (and catalog) CSV", local: true, run: runGenerate},
	{name: "token new", args: "ROLES NAME", summary: "a fresh token and its line for recsysd's --tokens-file", local: true, run: runTokenNew},
	{name: "demo", summary: "the whole product on the embedded store, in about a minute", local: true, run: runDemo},
}

// invocation is one run of a command: its flag set (the command's flags and
// the connection flags), its arguments and where it writes. A command's run
// defines its flags on fs, calls parse (or exactly/atLeast), then client.
type invocation struct {
	cmd    *command
	fs     *flag.FlagSet
	args   []string // the arguments with the command's words taken out
	conn   *connFlags
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	c      *client.Client
}

// parse parses the command line (flags anywhere, connection flags too),
// fills connection flags left unset from RECSYS_* variables, and returns
// the positional arguments.
func (x *invocation) parse() ([]string, error) {
	pos, err := cli.Parse(x.fs, x.args)
	if err != nil {
		return nil, err
	}
	if err := cli.FillEnv(x.conn.fs(x.fs), "RECSYS", x.getenv); err != nil {
		return nil, err
	}
	return pos, nil
}

// exactly parses and wants n positional arguments.
func (x *invocation) exactly(n int) ([]string, error) {
	pos, err := x.parse()
	if err != nil {
		return nil, err
	}
	if len(pos) != n {
		return nil, x.usageError("want %d argument(s) (%s), got %d %q", n, x.cmd.args, len(pos), pos)
	}
	return pos, nil
}

// atLeast parses and wants n or more positional arguments.
func (x *invocation) atLeast(n int) ([]string, error) {
	pos, err := x.parse()
	if err != nil {
		return nil, err
	}
	if len(pos) < n {
		return nil, x.usageError("want at least %d argument(s) (%s)", n, x.cmd.args)
	}
	return pos, nil
}

func (x *invocation) usageError(format string, a ...any) error {
	return cli.Usagef("%s: %s; usage: recsysctl %s %s [flags] (--help for more)",
		x.cmd.name, fmt.Sprintf(format, a...), x.cmd.name, x.cmd.args)
}

// client connects to recsysd (once) with the connection flags.
func (x *invocation) client() (*client.Client, error) {
	if x.c != nil {
		return x.c, nil
	}
	opts, err := x.conn.options()
	if err != nil {
		return nil, err
	}
	c, err := client.New(x.conn.addr, opts...)
	if err != nil {
		return nil, err
	}
	x.c = c
	return c, nil
}

func (x *invocation) close() {
	if x.c != nil {
		_ = x.c.Close()
	}
}

// printJSON writes m as indented JSON (the proto's JSON mapping).
func (x *invocation) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(x.stdout, "%s\n", b)
	return err
}

// connFlags are the flags of every command that calls recsysd.
type connFlags struct {
	addr    string
	timeout time.Duration
	token   string
	tls     bool
	files   client.TLSFiles
}

// names of the connection flags, for the environment and the help page.
var connFlagNames = []string{"addr", "timeout", "token", "tls", "server-ca", "client-cert", "client-key", "server-name"}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:50051", "recsysd's gRPC address")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of each call")
	fs.StringVar(&c.token, "token", "", "bearer token of the caller")
	fs.BoolVar(&c.tls, "tls", false, "TLS, verifying the server with the system roots")
	fs.StringVar(&c.files.CAFile, "server-ca", "", "TLS, verifying the server with this CA (PEM)")
	fs.StringVar(&c.files.CertFile, "client-cert", "", "client certificate (PEM), with --client-key")
	fs.StringVar(&c.files.KeyFile, "client-key", "", "key of the client certificate (PEM)")
	fs.StringVar(&c.files.ServerName, "server-name", "", "name the server's certificate must carry")
}

// fs returns a flag set of only the connection flags of full, sharing
// their values and whether the command line set them.
func (c *connFlags) fs(full *flag.FlagSet) *flag.FlagSet {
	sub := flag.NewFlagSet("connection", flag.ContinueOnError)
	set := map[string]bool{}
	full.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range connFlagNames {
		f := full.Lookup(name)
		sub.Var(f.Value, f.Name, f.Usage)
		if set[name] {
			_ = sub.Set(name, f.Value.String()) // mark as set: the environment must not override it
		}
	}
	return sub
}

func (c *connFlags) options() ([]client.Option, error) {
	opts := []client.Option{client.WithTimeout(c.timeout)}
	if c.token != "" {
		opts = append(opts, client.WithToken(c.token))
	}
	if c.tls || c.files != (client.TLSFiles{}) {
		opts = append(opts, client.WithTLSFiles(c.files))
	}
	return opts, nil
}

// find returns the command args select and the arguments after its words,
// or the words that matched no command.
func find(args []string) (*command, []string) {
	var best *command
	for i := range commands {
		c := &commands[i]
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) &&
			(best == nil || len(words) > len(strings.Fields(best.name))) {
			best = c
		}
	}
	if best == nil {
		return nil, args
	}
	return best, args[len(strings.Fields(best.name)):]
}

// group lists the commands whose name starts with word ("model" lists
// model get, model list, model activate).
func group(word string) []*command {
	var out []*command
	for i := range commands {
		if strings.HasPrefix(commands[i].name, word+" ") {
			out = append(out, &commands[i])
		}
	}
	return out
}

func writeCommandList(w io.Writer, cmds []*command) {
	for _, c := range cmds {
		use := c.name
		if c.args != "" {
			use += " " + c.args
		}
		fmt.Fprintf(w, "  %-32s %s\n", use, c.summary)
	}
}

// commandHelp is the help page of one command.
func commandHelp(x *invocation) func() {
	return func() {
		w := x.stderr
		fmt.Fprintf(w, "usage: recsysctl %s %s [flags]\n\n%s.\n\nflags:\n", x.cmd.name, x.cmd.args, x.cmd.summary)
		own := flag.NewFlagSet("", flag.ContinueOnError)
		conn := flag.NewFlagSet("", flag.ContinueOnError)
		x.fs.VisitAll(func(f *flag.Flag) {
			if slices.Contains(connFlagNames, f.Name) {
				conn.Var(f.Value, f.Name, f.Usage)
			} else {
				own.Var(f.Value, f.Name, f.Usage)
			}
		})
		own.SetOutput(w)
		own.PrintDefaults()
		if countFlags(own) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		if !x.cmd.local {
			fmt.Fprintln(w, "\nconnection flags (before or after the command):")
			conn.SetOutput(w)
			conn.PrintDefaults()
			fmt.Fprintln(w)
			fmt.Fprint(w, cli.EnvHelp(conn, "RECSYS"))
		}
		fmt.Fprintln(w)
		fmt.Fprint(w, cli.ExitCodesHelp)
	}
}

// unary is the whole of a command that takes n positional arguments, makes
// one call and prints its answer: parse, connect, call, print. Flags are
// defined on x.fs before it.
func unary(ctx context.Context, x *invocation, n int, call func(c *client.Client, args []string) (proto.Message, error)) error {
	args, err := x.exactly(n)
	if err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := call(c, args)
	if err != nil {
		return err
	}
	return x.printJSON(res)
}

func countFlags(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}
