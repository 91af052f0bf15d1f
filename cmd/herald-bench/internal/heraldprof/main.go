// SPDX-License-Identifier: Apache-2.0

// Command heraldprof is `herald run` with profiles, for herald-bench only:
// herald has no pprof endpoint and its packages take no build tags, so the
// bench builds this wrapper, which runs the unchanged herald.Run and writes
//
//   - a CPU profile of the whole run to $HERALD_CPUPROFILE (written when
//     herald stops),
//   - block and mutex profiles (where goroutines wait, and for which locks)
//     to $HERALD_BLOCKPROFILE and $HERALD_MUTEXPROFILE when herald stops,
//   - a heap profile to $HERALD_HEAPPROFILE each time it gets SIGUSR1.
//
// The bench installs it in place of /usr/bin/herald with a drop-in, so the
// profiles come from herald running under systemd with its own unit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/herald"
)

func main() {
	os.Exit(run())
}

func run() int {
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: heraldprof run [--config FILE]")
		return herald.ExitUsage
	}
	fs := flag.NewFlagSet("heraldprof run", flag.ContinueOnError)
	cfg := fs.String("config", "", "configuration file")
	if err := fs.Parse(os.Args[2:]); err != nil {
		return herald.ExitUsage
	}
	if p := os.Getenv("HERALD_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "heraldprof:", err)
			return herald.ExitFailure
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "heraldprof:", err)
			return herald.ExitFailure
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if p := os.Getenv("HERALD_BLOCKPROFILE"); p != "" {
		// One sample per 100µs spent blocked: cheap, and enough to see
		// which waits dominate a message's latency.
		runtime.SetBlockProfileRate(100_000)
		defer writeProfile("block", p)
	}
	if p := os.Getenv("HERALD_MUTEXPROFILE"); p != "" {
		runtime.SetMutexProfileFraction(10)
		defer writeProfile("mutex", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if p := os.Getenv("HERALD_HEAPPROFILE"); p != "" {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		go func() {
			for {
				select {
				case <-usr1:
					writeHeap(p)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	err := herald.Run(ctx, herald.Options{ConfigPath: *cfg, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "heraldprof:", err)
	}
	return herald.ExitCode(err)
}

func writeHeap(path string) {
	runtime.GC()
	writeProfile("heap", path)
}

func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "heraldprof: %s profile: %v\n", name, err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		fmt.Fprintf(os.Stderr, "heraldprof: %s profile: %v\n", name, err)
	}
}
