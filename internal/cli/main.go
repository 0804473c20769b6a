package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// A Command is a command's run function: everything main would reach for
// (the arguments without the program name, the environment, the standard
// streams) is a parameter, so tests call it as main does.
type Command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Main runs cmd as the process: with a context that SIGINT and SIGTERM
// (what Kubernetes sends) cancel, os.Args[1:], os.Getenv, os.Stdout and
// os.Stderr. It returns cmd's error for main to turn into the exit status,
// in one place:
//
//	func main() { os.Exit(cli.Exit("recsysd", cli.Main(run), os.Stderr)) }
func Main(cmd Command) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmd(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
}
