// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Options configure a run.
type Options struct {
	// Repo is the repository root: units/, packaging/herald.yaml and
	// pkg/dispatch are read from it, the helpers are built in it.
	Repo string
	// Herald is the herald binary under test (bin/herald of `make build`).
	Herald string
	// Output is the report file.
	Output string
	// Quick runs few repetitions and short loads: a smoke test of the bench
	// itself, not numbers to publish.
	Quick bool
	// SkipGoBench skips the Go benchmarks of pkg/dispatch.
	SkipGoBench bool
	// Profiles, if set, is a directory that receives the pprof files
	// (herald-prof binary, cpu, block, mutex and heap profiles) for
	// further analysis with go tool pprof.
	Profiles string
	// Only, if not empty, names the measures to run (see Measures); the
	// report then lacks the others. For working on the bench.
	Only []string
	// Log receives progress lines.
	Log io.Writer
}

// Measures are the keys Options.Only accepts, in the order they run.
var Measures = []string{"start", "idle", "restart", "hung", "load", "throughput", "sessions", "media", "nats", "failover", "profile"}

// plan is how much of everything a run does.
type plan struct {
	startReps, restartReps, cliReps, hungReps, rssReps int
	loadRestarts                                       int
	loadBaseline                                       time.Duration
	warmup, window, intake                             time.Duration
	sessions                                           int
	mediaReps                                          int
	failoverReps                                       int
	profile                                            time.Duration
	goBenchTime                                        string
	goBenchCount                                       int
}

func planFor(quick bool) plan {
	if quick {
		return plan{startReps: 4, restartReps: 4, cliReps: 2, hungReps: 2, rssReps: 2, loadRestarts: 4,
			loadBaseline: 2 * time.Second, warmup: time.Second, window: 3 * time.Second, intake: 2 * time.Second,
			sessions: 1000, mediaReps: 5, failoverReps: 2, profile: 3 * time.Second, goBenchTime: "200ms", goBenchCount: 1}
	}
	return plan{startReps: 20, restartReps: 20, cliReps: 10, hungReps: 10, rssReps: 5, loadRestarts: 20,
		loadBaseline: 10 * time.Second, warmup: 3 * time.Second, window: 10 * time.Second, intake: 5 * time.Second,
		sessions: 10000, mediaReps: 100, failoverReps: 5, profile: 10 * time.Second, goBenchTime: "1s", goBenchCount: 5}
}

// runner carries a run's state between the measures.
type runner struct {
	opts  Options
	plan  plan
	e     *env
	rep   *Report
	start time.Time
	errs  []error
	goals []Goal
	// packaged is packaging/herald.yaml, the configuration a package
	// installs.
	packaged string
	// profiles are pprof outputs for the report.
	profiles []Block
	// memIdle is the idle memory table, shown with the session measures.
	memIdle Table
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Log, "herald-bench [%5.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Main runs every measure and writes the report. A measure that fails is
// reported as such and does not stop the others; Main then returns an error
// after writing the report. Everything it starts is stopped before it
// returns.
func Main(ctx context.Context, opts Options) error {
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	r := &runner{opts: opts, plan: planFor(opts.Quick), start: time.Now()}
	r.rep = &Report{Generated: time.Now(), Command: "make bench"}
	if opts.Quick {
		r.rep.Command = "herald-bench -quick"
	}
	b, err := os.ReadFile(filepath.Join(opts.Repo, "packaging", "herald.yaml"))
	if err != nil {
		return fmt.Errorf("bench: %w (run from the repository root)", err)
	}
	r.packaged = string(b)

	e, err := setup(ctx, opts, r.logf)
	if err != nil {
		return err
	}
	r.e = e
	r.rep.Machine = machine(ctx, e)
	steps := []struct {
		key, name string
		fn        func(context.Context) error
	}{
		{"start", "start to READY", r.startReady},
		{"idle", "idle memory", r.idleMemory},
		{"restart", "restart", r.restartIdle},
		{"hung", "stop with a hung adapter", r.hungStop},
		{"load", "restart under load", r.restartUnderLoad},
		{"throughput", "throughput", r.throughput},
		{"sessions", "memory with many sessions", r.sessionsMemory},
		{"media", "media in", r.mediaIn},
		{"nats", "JetStream store", r.natsThroughput},
		{"failover", "platform failover between herald nodes", r.failover},
		{"profile", "profiles", r.profile},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, s.key) {
			continue
		}
		r.logf("measure: %s", s.name)
		if err := s.fn(ctx); err != nil {
			r.logf("measure %s failed: %v", s.name, err)
			r.errs = append(r.errs, fmt.Errorf("%s: %w", s.name, err))
			r.rep.Add(s.name+" (failed)", Para("This measure did not complete: `"+err.Error()+"`."))
		}
	}
	r.logf("stopping the sandbox")
	if err := e.Close(); err != nil {
		r.errs = append(r.errs, err)
	}
	if !opts.SkipGoBench && ctx.Err() == nil {
		r.logf("measure: Go benchmarks of pkg/dispatch")
		if err := r.goBench(ctx); err != nil {
			r.errs = append(r.errs, fmt.Errorf("go benchmarks: %w", err))
		}
	}
	r.finish()
	var out bytes.Buffer
	r.rep.Render(&out)
	if err := os.WriteFile(opts.Output, out.Bytes(), 0o644); err != nil {
		return err
	}
	r.logf("wrote %s", opts.Output)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(r.errs...)
}

// finish adds the goals, the profiles, the findings and the method notes.
func (r *runner) finish() {
	r.rep.Took = time.Since(r.start)
	r.rep.Goals = r.goals
	if len(r.profiles) > 0 {
		r.rep.Add("Profiles", r.profiles...)
	}
	r.rep.Add("Findings and recommended fixes", Para(findings))
	r.rep.Add("Method", methodNotes()...)
}
