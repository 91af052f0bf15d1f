// SPDX-License-Identifier: Apache-2.0

// Command herald-bench measures herald against a floor program under a real
// systemd and writes BENCHMARKS.md (`make bench`, as root). The work is in
// internal/bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/heraldgw/herald/cmd/herald-bench/internal/bench"
)

func main() {
	var opts bench.Options
	flag.StringVar(&opts.Output, "o", "BENCHMARKS.md", "report file")
	flag.StringVar(&opts.Repo, "repo", ".", "repository root")
	flag.StringVar(&opts.Herald, "herald", "bin/herald", "herald binary under test")
	flag.BoolVar(&opts.Quick, "quick", false, "few repetitions and short loads (a smoke test of the bench)")
	flag.StringVar(&opts.Profiles, "profiles", "", "keep the pprof files (and the profiled binary) in this directory")
	flag.BoolVar(&opts.SkipGoBench, "skip-go-bench", false, "skip the Go benchmarks of pkg/dispatch")
	only := flag.String("only", "", "comma-separated measures to run, of: "+strings.Join(bench.Measures, ","))
	flag.Parse()
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Main(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "herald-bench:", err)
		os.Exit(1)
	}
}
