// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"math"
	"time"
)

// The goals, each a pure function of measured values so that the
// verdicts can be tested. A goal whose measure did not run gets NotRun or
// Invalid, never PASS.
//
// Every goal that depends on the machine's speed is judged by herald's
// ratio to the floor measured in the same run, never by an absolute
// figure: on a slower or busier machine herald and the floor slow down
// together, and an absolute target would measure the machine, not herald.
// The absolute figures are shown as information only. The ratios are the
// original absolute targets divided by the floor of the reference run
// (2 cores, idle), rounded: start to READY 50 ms against a floor of
// 16.5 ms; 5,000 messages/s against the plain relay's 15,496/s; an idle
// RSS of 20 MB against the floor's 5.8 MB.

// Goal targets.
const (
	startReadyFloorMax = 3.0
	restartFloorMax    = 3.0
	hungStopSlack      = 100 * time.Millisecond
	throughputFloorMin = 0.3
	idleRSSFloorMax    = 3.5
	floorNote          = "floor of this run"
)

// ratioGoal judges herald against the floor of the same run: within ok,
// the ratio r = herald/floor passes. Measured shows the ratio first, then
// both absolute figures (formatted by abs) for information.
func ratioGoal(g Goal, herald, floor float64, abs func(float64) string, ok func(r float64) bool) Goal {
	if herald <= 0 || floor <= 0 || math.IsNaN(herald) || math.IsNaN(floor) {
		g.Verdict = Invalid
		return g
	}
	r := Ratio(herald, floor)
	g.Measured = fmt.Sprintf("%s (herald %s, floor %s)", ratio(r), abs(herald), abs(floor))
	g.Verdict = verdict(ok(r))
	return g
}

func goalStartReady(herald, floor Summary) Goal {
	g := Goal{Name: "Start to READY", Target: fmt.Sprintf("median ≤ %.0f× the %s", startReadyFloorMax, floorNote)}
	if herald.N == 0 || floor.N == 0 {
		g.Verdict = Invalid
		return g
	}
	return ratioGoal(g, herald.Median, floor.Median, ms, func(r float64) bool { return r <= startReadyFloorMax })
}

func goalRestart(herald, floor Summary) Goal {
	g := Goal{Name: "Restart (idle)", Target: fmt.Sprintf("median ≤ %.0f× the %s", restartFloorMax, floorNote)}
	if herald.N == 0 || floor.N == 0 {
		g.Verdict = Invalid
		return g
	}
	return ratioGoal(g, herald.Median, floor.Median, ms, func(r float64) bool { return r <= restartFloorMax })
}

// goalHungStop judges the slowest stop: every stop must end within the
// bound, not just the typical one. The bound is relative to the same run:
// the hung adapter may add adapter_timeout (plus a fixed slack for
// abandoning it) to the slowest stop of the same configuration without it.
func goalHungStop(stop, plain Summary, adapterTimeout time.Duration) Goal {
	g := Goal{Name: "Stop with a hung adapter", Target: fmt.Sprintf("every stop ≤ adapter_timeout (%v) + %v + the slowest stop without the hung adapter in this run", adapterTimeout, hungStopSlack)}
	if stop.N == 0 || plain.N == 0 {
		g.Verdict = Invalid
		return g
	}
	bound := adapterTimeout.Seconds() + hungStopSlack.Seconds() + plain.Max
	g.Measured = fmt.Sprintf("max %s against a bound of %s (without the hung adapter: max %s; median %s, n=%d)",
		ms(stop.Max), ms(bound), ms(plain.Max), ms(stop.Median), stop.N)
	g.Verdict = verdict(stop.Max <= bound)
	return g
}

// goalNoFailures counts failed requests: a count of errors, not a speed,
// so it has no floor.
func goalNoFailures(failed, total int) Goal {
	g := Goal{Name: "Requests failed across restarts", Target: "0"}
	if total == 0 {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("%d of %d", failed, total)
	g.Verdict = verdict(failed == 0)
	return g
}

func goalThroughput(perSec, floorPerSec float64, cores int) Goal {
	g := Goal{Name: "Durable messages/s (webhook → store → echo → delivery)",
		Target: fmt.Sprintf("≥ %.1f× the plain relay (%s)", throughputFloorMin, floorNote)}
	g = ratioGoal(g, perSec, floorPerSec, rate, func(r float64) bool { return r >= throughputFloorMin })
	if g.Verdict != Invalid {
		g.Measured += fmt.Sprintf(" on %d cores", cores)
	}
	return g
}

func goalIdleRSS(rss, floor Summary) Goal {
	g := Goal{Name: "Idle RSS", Target: fmt.Sprintf("median VmRSS ≤ %.1f× the %s", idleRSSFloorMax, floorNote)}
	if rss.N == 0 || floor.N == 0 {
		g.Verdict = Invalid
		return g
	}
	mb := func(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }
	return ratioGoal(g, rss.Median, floor.Median, mb, func(r float64) bool { return r <= idleRSSFloorMax })
}

func verdict(ok bool) Verdict {
	if ok {
		return Pass
	}
	return Miss
}
