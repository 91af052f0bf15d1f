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
// The absolute figures are shown as information only.
//
// The throughput floor is the durable relay: the least a gateway that
// stores each message before its 202 must do (see internal/floor). herald
// should come within 10% of its rate and 20% of its CPU per message, with
// store.sync: full; sync normal, which skips the flush of each commit, must
// not be slower than full. Start and restart should cost at most 30% more
// than the floor program under the same unit. After a burst of sessions
// herald should give its memory back: a minute later, RSS within 5 MiB of
// idle. An idle RSS of 20 MB against the floor's 5.8 MB gave the 3.5×.

// Goal targets.
const (
	startReadyFloorMax = 1.3
	restartFloorMax    = 1.3
	hungStopSlack      = 100 * time.Millisecond
	throughputFloorMin = 0.9
	cpuFloorMax        = 1.2
	idleRSSFloorMax    = 3.5
	burstRSSSlack      = 5 << 20
	floorNote          = "floor of this run"
	durableNote        = "durable relay of this run"
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
	g := Goal{Name: "Start to READY", Target: fmt.Sprintf("median ≤ %.1f× the %s", startReadyFloorMax, floorNote)}
	if herald.N == 0 || floor.N == 0 {
		g.Verdict = Invalid
		return g
	}
	return ratioGoal(g, herald.Median, floor.Median, ms, func(r float64) bool { return r <= startReadyFloorMax })
}

func goalRestart(herald, floor Summary) Goal {
	g := Goal{Name: "Restart (idle)", Target: fmt.Sprintf("median ≤ %.1f× the %s", restartFloorMax, floorNote)}
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

// goalThroughput judges herald's rate (sync full) against the durable
// relay's; the plain relay's ratio is shown for reference. why explains a
// miss.
func goalThroughput(perSec, durablePerSec, plainPerSec float64, cores int, why string) Goal {
	g := Goal{Name: "Durable messages/s (webhook → store → echo → delivery), sync full",
		Target: fmt.Sprintf("≥ %.1f× the %s", throughputFloorMin, durableNote)}
	g = ratioGoal(g, perSec, durablePerSec, rate, func(r float64) bool { return r >= throughputFloorMin })
	if g.Verdict != Invalid {
		g.Measured += fmt.Sprintf(" on %d cores; %s the plain relay", cores, ratio(Ratio(perSec, plainPerSec)))
	}
	return because(g, why)
}

// goalCPU judges herald's CPU per message (sync full) against the durable
// relay's.
func goalCPU(perMsg, durablePerMsg float64, why string) Goal {
	g := Goal{Name: "CPU per message, sync full", Target: fmt.Sprintf("≤ %.1f× the %s", cpuFloorMax, durableNote)}
	us := func(s float64) string { return fmt.Sprintf("%.0f µs", s*1e6) }
	return because(ratioGoal(g, perMsg, durablePerMsg, us, func(r float64) bool { return r <= cpuFloorMax }), why)
}

// goalSyncNormal: the setting that skips a flush per commit must not be
// the slower one.
func goalSyncNormal(normalPerSec, fullPerSec float64, why string) Goal {
	g := Goal{Name: "store.sync: normal at least as fast as full", Target: "msgs/s normal ≥ msgs/s full, same run"}
	if normalPerSec <= 0 || fullPerSec <= 0 || math.IsNaN(normalPerSec) || math.IsNaN(fullPerSec) {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("%s (normal %s, full %s)", ratio(Ratio(normalPerSec, fullPerSec)), rate(normalPerSec), rate(fullPerSec))
	g.Verdict = verdict(normalPerSec >= fullPerSec)
	return because(g, why)
}

// goalBurstRSS: a minute after a burst of sessions was answered, herald's
// RSS is back within burstRSSSlack of what it was idle before.
func goalBurstRSS(idle, after float64, sessions int, why string) Goal {
	g := Goal{Name: fmt.Sprintf("RSS a minute after %d sessions were answered", sessions),
		Target: fmt.Sprintf("≤ idle + %s", mib(burstRSSSlack))}
	if idle <= 0 || after <= 0 || math.IsNaN(idle) || math.IsNaN(after) {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("idle + %s (idle %s, after %s)", mib(after-idle), mib(idle), mib(after))
	g.Verdict = verdict(after <= idle+burstRSSSlack)
	return because(g, why)
}

// because adds the reason of a miss to the measured column.
func because(g Goal, why string) Goal {
	if g.Verdict == Miss && why != "" {
		g.Measured += "; " + why
	}
	return g
}

// writeReason compares the writes per message of herald with a reference
// (the durable relay, or herald with sync full): the usual reason for a
// gap in rate or CPU.
func writeReason(h, ref perMsg) string {
	if math.IsNaN(h.Statements) || math.IsNaN(ref.Statements) {
		return ""
	}
	return fmt.Sprintf("per message %s statements in %s commits and %s written, against %s in %s and %s",
		num(h.Statements, 1), num(h.Commits, 3), kb(h.Bytes), num(ref.Statements, 1), num(ref.Commits, 3), kb(ref.Bytes))
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
