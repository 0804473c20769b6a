package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/reportview"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// parseArms parses --arms: NAME:WEIGHT followed by options, comma
// separated: "control:1:popular,model:1:cap=2:explore=0.1:cold=trending",
// "old:1:model=20261201T000000Z-1a2b3c,new:1".
func parseArms(s string) ([]*recsysv1.Arm, error) {
	var out []*recsysv1.Arm
	for _, spec := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(spec), ":")
		if len(parts) < 2 {
			return nil, fmt.Errorf("arm %q: want NAME:WEIGHT[:option...]", spec)
		}
		w, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("arm %q: weight %q is not a whole number", spec, parts[1])
		}
		a := &recsysv1.Arm{Name: parts[0], Weight: uint32(w)}
		for _, o := range parts[2:] {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "popular":
				a.Popular = true
			case "cap":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("arm %q: cap=%q is not a number", spec, v)
				}
				a.MaxPerCategory = int32(n)
			case "explore":
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return nil, fmt.Errorf("arm %q: explore=%q is not a number", spec, v)
				}
				a.ExploreShare = proto.Float64(f)
			case "model":
				a.ModelVersion = v
			case "cold":
				switch v {
				case "popular":
					a.ColdSource = recsysv1.Source_SOURCE_POPULAR
				case "trending":
					a.ColdSource = recsysv1.Source_SOURCE_TRENDING
				default:
					return nil, fmt.Errorf("arm %q: cold=%q: want popular or trending", spec, v)
				}
			default:
				return nil, fmt.Errorf("arm %q: unknown option %q (popular, cap=N, explore=F, cold=popular|trending, model=VERSION)", spec, o)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// experimentFlags defines the flags of create and update and returns a
// function building the experiment once they are parsed.
func experimentFlags(x *invocation, create bool) func(name string) (*recsysv1.Experiment, error) {
	var placement, salt *string
	if create {
		placement = x.fs.String("placement", "", "the placement (RequestContext.placement) the experiment runs on; required")
		salt = x.fs.String("salt", "", "mixed into the user hash (default: the name)")
	}
	share := x.fs.Float64("share", 1, "the share of the placement's users in the experiment, (0, 1]")
	arms := x.fs.String("arms", "", "the arms, NAME:WEIGHT[:popular|:cap=N|:explore=F|:cold=popular|trending|:model=VERSION],... (required)")
	control := x.fs.String("control", "", "the control arm (default: the first)")
	return func(name string) (*recsysv1.Experiment, error) {
		if *arms == "" {
			return nil, x.usageError("--arms is required")
		}
		as, err := parseArms(*arms)
		if err != nil {
			return nil, x.usageError("--arms: %v", err)
		}
		e := &recsysv1.Experiment{Name: name, TrafficShare: *share, Arms: as, ControlArm: *control}
		if create {
			e.Placement, e.Salt = *placement, *salt
		}
		return e, nil
	}
}

func runExperimentCreate(ctx context.Context, x *invocation) error {
	return writeExperiment(ctx, x, true)
}

func runExperimentUpdate(ctx context.Context, x *invocation) error {
	return writeExperiment(ctx, x, false)
}

// writeExperiment creates (or updates) the experiment its flags describe.
func writeExperiment(ctx context.Context, x *invocation, create bool) error {
	build := experimentFlags(x, create)
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		e, err := build(args[0])
		if err != nil {
			return nil, err
		}
		if create {
			return c.Experiments.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: e})
		}
		return c.Experiments.UpdateExperiment(ctx, &recsysv1.UpdateExperimentRequest{Experiment: e})
	})
}

func runExperimentList(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 0, func(c *client.Client, _ []string) (proto.Message, error) {
		return c.Experiments.ListExperiments(ctx, &recsysv1.ListExperimentsRequest{})
	})
}

func runExperimentStop(ctx context.Context, x *invocation) error {
	return unary(ctx, x, 1, func(c *client.Client, args []string) (proto.Message, error) {
		return c.Experiments.StopExperiment(ctx, &recsysv1.StopExperimentRequest{Name: args[0]})
	})
}

// runReport prints GetReport as tables with verdicts (internal/reportview)
// or, with --json, as the message's JSON.
func runReport(ctx context.Context, x *invocation) error {
	today := time.Now().UTC().Format(time.DateOnly)
	from := x.fs.String("from", today, "the first UTC day, YYYY-MM-DD")
	to := x.fs.String("to", "", "the last UTC day (default: --from)")
	xp := x.fs.String("experiment", "", "an experiment to report per arm")
	campaign := x.fs.String("campaign", "", "a push campaign (BatchRecommend campaign_id): its pushed users' visits and purchases against its held-out users'")
	days := x.fs.Int("campaign-days", 0, "the days after the campaign's start that count, 1 to 90 (default 7)")
	retention := x.fs.Bool("retention", false, "with --experiment: also retention and repurchase per arm and segment over 30 and 90 days (reads every experiment user's profile)")
	asJSON := x.fs.Bool("json", false, "print the GetReport answer as JSON instead of tables")
	if _, err := x.exactly(0); err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	rep, err := c.Experiments.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: *from, ToDate: *to, Experiment: *xp,
		Campaign: *campaign, CampaignDays: int32(*days), Retention: *retention})
	if err != nil {
		return err
	}
	if *asJSON {
		return x.printJSON(rep)
	}
	return reportview.Write(x.stdout, *xp, rep)
}
