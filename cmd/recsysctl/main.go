// Command recsysctl is the command-line client of recsysd, and the home of the
// demo and the synthetic shop generator. `recsysctl --help` lists the
// commands, `recsysctl COMMAND --help` explains one. Answers are printed as
// JSON on stdout; progress and errors go to stderr. Connection flags
// (--addr, --token, --tls, --server-ca, --client-cert, --client-key,
// --server-name, --timeout) go before or after the command, and each is
// also read from RECSYS_<FLAG> (RECSYS_TOKEN, RECSYS_ADDR). Exit codes are
// internal/cli's: 0 ok, 1 failure, 2 usage, 4 rows rejected.
//
// # Adding a command
//
// Every subcommand is one line of the commands table (commands.go) and one
// run function. The function defines its flags on x.fs, parses with
// x.exactly(n) or x.atLeast(n) (flags before and after the arguments,
// --help, usage errors with exit code 2 all come with it), connects with
// x.client() and prints with x.printJSON. A command that makes one call is
// a few lines with unary:
//
//	{name: "model report", args: "VERSION", summary: "the model's HTML report", run: runModelReport},
//
//	func runModelReport(ctx context.Context, x *invocation) error {
//		return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
//			return c.Models.GetModelReport(ctx, &recsysv1.GetModelReportRequest{Version: args[0]})
//		})
//	}
//
// Words of a name ("model report") make the help group them: `recsysctl
// model` lists the model commands. Commands that do not call recsysd set
// local: true.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/recsys-dev/recsys/internal/cli"
)

func main() { os.Exit(cli.Exit("recsysctl", cli.Main(run), os.Stderr)) }

// run finds the command in args and runs it. Connection flags may come
// before the command; the command's invocation parses them again with
// its own flags, wherever they are.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	top := flag.NewFlagSet("recsysctl", flag.ContinueOnError)
	top.SetOutput(stderr)
	var conn connFlags
	conn.register(top)
	version := top.Bool("version", false, "print the version and exit")
	top.Usage = func() { mainHelp(stderr, top) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return cli.WithExit(cli.ExitUsage, err)
	}
	if *version {
		_, err := fmt.Fprintln(stdout, cli.Version("recsysctl"))
		return err
	}
	rest := top.Args()
	if len(rest) == 0 {
		top.Usage()
		return cli.Usagef("no command given")
	}
	cmd, cmdArgs := find(rest)
	if cmd == nil {
		if g := group(rest[0]); len(g) > 0 {
			fmt.Fprintf(stderr, "recsysctl %s commands:\n", rest[0])
			writeCommandList(stderr, g)
			if len(rest) > 1 && (rest[1] == "-h" || rest[1] == "--help" || rest[1] == "-help") {
				return flag.ErrHelp
			}
			if len(rest) == 1 {
				return cli.Usagef("%s: which one?", rest[0])
			}
			return cli.Usagef("unknown command %q", rest[0]+" "+rest[1])
		}
		top.Usage()
		return cli.Usagef("unknown command %q", rest[0])
	}
	lead := args[:len(args)-len(rest)] // flags before the command
	x := &invocation{
		cmd:    cmd,
		fs:     flag.NewFlagSet("recsysctl "+cmd.name, flag.ContinueOnError),
		args:   append(append([]string(nil), lead...), cmdArgs...),
		conn:   new(connFlags),
		getenv: getenv,
		stdout: stdout,
		stderr: stderr,
	}
	x.conn.register(x.fs)
	x.fs.SetOutput(stderr)
	x.fs.Usage = commandHelp(x)
	defer x.close()
	return cmd.run(ctx, x)
}

// mainHelp is `recsysctl --help`.
func mainHelp(w io.Writer, top *flag.FlagSet) {
	fmt.Fprint(w, "usage: recsysctl [connection flags] COMMAND [arguments] [flags]\n\n"+
		"The command-line client of recsysd. Answers are JSON on stdout; progress and errors go to stderr.\n"+
		"`recsysctl COMMAND --help` explains a command and its flags.\n\ncommands:\n")
	all := make([]*command, len(commands))
	for i := range commands {
		all[i] = &commands[i]
	}
	writeCommandList(w, all)
	fmt.Fprintln(w, "\nflags (the connection flags may also follow the command):")
	top.PrintDefaults()
	conn := flag.NewFlagSet("", flag.ContinueOnError)
	for _, name := range connFlagNames {
		f := top.Lookup(name)
		conn.Var(f.Value, f.Name, f.Usage)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, cli.EnvHelp(conn, "RECSYS"))
	fmt.Fprintln(w)
	fmt.Fprint(w, cli.ExitCodesHelp)
}
