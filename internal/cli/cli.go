// Package cli is what the recsys commands (recsysd, recsysctl, recsys-train)
// share so that they behave alike: exit codes, help pages that list the
// environment variables and exit codes, flags accepted before and after
// positional arguments, --version, and progress that suits a terminal and a
// log file alike.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/recsys-dev/recsys/internal/envflag"
)

// Exit codes of every recsys command. They are kept stable: scripts and
// CronJobs branch on them.
const (
	ExitOK      = 0 // success, and --help
	ExitFailure = 1 // anything that went wrong
	ExitUsage   = 2 // unknown command or flag, missing or extra argument
	// ExitGateRefused: recsys-train trained a model but the quality gate
	// refused to publish it (not an outage: the serving model stays).
	ExitGateRefused = 3
	// ExitRejected: an import finished but some rows were rejected
	// (--allow-rejects makes that success).
	ExitRejected = 4
)

// ExitCodesHelp is the exit-code section of every help page.
const ExitCodesHelp = `exit codes:
  0  success (and --help, --version)
  1  failure
  2  usage: unknown command or flag, missing or extra argument
  3  recsys-train: the quality gate refused the new model (the serving model stays)
  4  an import finished but rejected rows (--allow-rejects: 0)
`

// exitError carries the exit code of err.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// WithExit makes err end the command with code.
func WithExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// Usagef is a usage error (exit code 2).
func Usagef(format string, a ...any) error {
	return WithExit(ExitUsage, fmt.Errorf(format, a...))
}

// ExitCode is the exit code err ends a command with: 0 for nil and
// flag.ErrHelp, the code WithExit attached, else 1.
func ExitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return ExitFailure
}

// Exit reports err on stderr as "name: err" (nothing for nil, --help and
// errors the flag package already printed) and returns the exit code; main
// passes it to os.Exit.
func Exit(name string, err error, stderr io.Writer) int {
	code := ExitCode(err)
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errPrinted) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return code
}

// errPrinted marks a flag error the flag package has already written.
var errPrinted = errors.New("(reported above)")

// Parse parses fs over args, flags before and after the positional
// arguments (`recommend u1 --count 5` as well as `recommend --count 5 u1`),
// and returns the positional arguments; everything after "--" is
// positional. The standard flag package stops at the first non-flag, which
// would make every later flag an argument, or a file name. A flag error is
// a usage error; -h and --help return flag.ErrHelp after fs.Usage printed
// the help page.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
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
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// The flag package printed the error and the usage.
			return nil, WithExit(ExitUsage, fmt.Errorf("%w: %w", err, errPrinted))
		}
		args = fs.Args()
	}
	return append(pos, tail...), nil
}

// FillEnv sets every flag of fs the command line left unset from its
// PREFIX_NAME environment variable (see envflag). A bad value is a usage
// error naming the variable.
func FillEnv(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	return WithExit(ExitUsage, envflag.Fill(fs, prefix, getenv))
}

// EnvHelp is the environment section of a help page: the variable of every
// flag of fs, with the flag it fills.
func EnvHelp(fs *flag.FlagSet, prefix string) string {
	var b strings.Builder
	b.WriteString("environment (fills a flag the command line leaves unset):\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "  %-28s --%s\n", envflag.Name(prefix, f.Name), f.Name)
	})
	return b.String()
}

// Version is what --version prints: the module version and VCS revision
// the binary was built from, and the Go version.
func Version(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	out := name + " " + v
	if rev != "" {
		out += " " + rev + dirty
	}
	return out + " " + bi.GoVersion
}
