// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// goBenchResult is one benchmark's runs (go test -count), by metric unit.
type goBenchResult struct {
	Name    string
	Metrics map[string][]float64 // "ns/op", "msgs/s", "B/op", "allocs/op", ...
}

// goBenchOutput is what parseGoBench found.
type goBenchOutput struct {
	Results  []*goBenchResult // in order of first appearance
	Failures []string         // "--- FAIL" lines with their messages
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parseGoBench parses `go test -bench` output: result lines ("BenchmarkX-2
// 1000 123 ns/op 4.5 msgs/s") and failures ("--- FAIL: BenchmarkX" followed
// by indented messages).
func parseGoBench(out string) goBenchOutput {
	var res goBenchOutput
	byName := map[string]*goBenchResult{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	inFail := false
	for sc.Scan() {
		line := sc.Text()
		// A failure message may be printed on the result line's own row
		// ("BenchmarkX-2 \t--- FAIL: BenchmarkX-2").
		if i := strings.Index(line, "--- FAIL:"); i >= 0 {
			res.Failures = append(res.Failures, strings.TrimSpace(line[i:]))
			inFail = true
			continue
		}
		if inFail && (strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")) {
			res.Failures[len(res.Failures)-1] += " " + strings.TrimSpace(line)
			continue
		}
		inFail = false
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		if len(f) < 2 {
			continue
		}
		r := byName[m[1]]
		if r == nil {
			r = &goBenchResult{Name: m[1], Metrics: map[string][]float64{}}
			byName[m[1]] = r
			res.Results = append(res.Results, r)
		}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			r.Metrics[f[i+1]] = append(r.Metrics[f[i+1]], v)
		}
	}
	return res
}

// goBench runs the pipeline benchmarks of pkg/dispatch and adds them to the
// report.
func (r *runner) goBench(ctx context.Context) error {
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkPipeline$", "-benchtime", r.plan.goBenchTime,
		"-count", fmt.Sprint(r.plan.goBenchCount), "-timeout", "15m", "./pkg/dispatch"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.opts.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	outb, runErr := cmd.CombinedOutput()
	out := string(outb)
	parsed := parseGoBench(out)
	t := Table{Header: []string{"Benchmark", "runs", "msgs/s median", "msgs/s min–max", "ns/op median (per message)", "B/op", "allocs/op"}}
	for _, res := range parsed.Results {
		msgs := Summarize(res.Metrics["msgs/s"])
		ns := Summarize(res.Metrics["ns/op"])
		t.Rows = append(t.Rows, []string{
			"`" + strings.TrimPrefix(res.Name, "BenchmarkPipeline/") + "`", fmt.Sprint(ns.N),
			fmt.Sprintf("%.0f", msgs.Median), fmt.Sprintf("%.0f–%.0f", msgs.Min, msgs.Max),
			fmt.Sprintf("%.0f µs", ns.Median/1000),
			fmt.Sprintf("%.0f", Summarize(res.Metrics["B/op"]).Median), fmt.Sprintf("%.0f", Summarize(res.Metrics["allocs/op"]).Median),
		})
	}
	blocks := []Block{
		Para(fmt.Sprintf(`Go benchmarks of herald's core without HTTP and without systemd (pkg/dispatch/bench_test.go):
Deliver (store the inbound message) → echo agent → Finish (reply into the outbox) → the platform's
Send (a recording fake) → Delivered, with a real SQLite store in a temporary directory on the host's
disk. `+"`serial`"+` waits for each reply before the next message (ns/op = per-message latency);
`+"`concurrent=64`"+` has 64 goroutines delivering messages of 1,024 sessions (ns/op = per-message cost
under load); `+"`closed=64`"+` has 64 goroutines each waiting for its message's reply before the
next (a closed loop like the throughput measure: msgs/s is bound by the latency of the store's
group commits). Command: `+"`go %s`"+` (%s).`, strings.Join(args, " "), time.Since(start).Round(time.Second))),
		t,
	}
	if len(parsed.Failures) > 0 {
		blocks = append(blocks, Para("Runs that failed:"), List(quoteAll(parsed.Failures)))
	}
	r.rep.Add("Go benchmarks of the core (pkg/dispatch)", blocks...)
	if runErr != nil && len(parsed.Results) == 0 {
		return fmt.Errorf("go test: %v\n%s", runErr, out)
	}
	if len(parsed.Failures) > 0 {
		r.logf("  %d benchmark runs failed (see the report)", len(parsed.Failures))
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + strings.ReplaceAll(s, "`", "'") + "`"
	}
	return out
}
