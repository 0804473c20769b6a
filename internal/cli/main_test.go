package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
)

// Main hands the command the process's arguments (without the program
// name), environment and streams, and returns the command's error.
func TestMainHandsTheProcessToTheCommand(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"prog", "train", "--factors", "8"}
	t.Setenv("CLI_TEST_MAIN", "yes")
	want := errors.New("the command's error")
	got := Main(func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		if ctx.Err() != nil {
			t.Errorf("the context is done before the command runs: %v", ctx.Err())
		}
		if !slices.Equal(args, []string{"train", "--factors", "8"}) {
			t.Errorf("args %q, want the process's without the program name", args)
		}
		if getenv("CLI_TEST_MAIN") != "yes" {
			t.Error("getenv does not read the environment")
		}
		if stdout != os.Stdout || stderr != os.Stderr {
			t.Error("the streams are not the process's")
		}
		return want
	})
	if !errors.Is(got, want) {
		t.Errorf("Main returned %v, want the command's error", got)
	}
}
