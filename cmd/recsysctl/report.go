package main

import (
	"context"
	"fmt"
	"io"
	"os"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// runModelReport fetches the HTML report stored with a version (the
// serving one without VERSION) and writes it to stdout or to -o.
func runModelReport(ctx context.Context, x *invocation) error {
	out := x.fs.String("o", "", "write the report to this file instead of stdout")
	args, err := x.parse()
	if err != nil {
		return err
	}
	if len(args) > 1 {
		return x.usageError("want at most 1 argument (%s), got %d %q", x.cmd.args, len(args), args)
	}
	req := &recsysv1.GetModelReportRequest{}
	if len(args) == 1 {
		req.Version = args[0]
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := c.Models.GetModelReport(ctx, req)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err := io.WriteString(x.stdout, res.GetHtml())
		return err
	}
	if err := os.WriteFile(*out, []byte(res.GetHtml()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(x.stderr, "wrote the report of %s to %s (%d bytes)\n", res.GetVersion(), *out, len(res.GetHtml()))
	return nil
}
