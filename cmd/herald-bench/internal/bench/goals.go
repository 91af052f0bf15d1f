// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"time"
)

// The goals, each a pure function of measured values so that the
// verdicts can be tested. A goal whose measure did not run gets NotRun or
// Invalid, never PASS.

// Goal targets.
const (
	startReadyMax      = 50 * time.Millisecond
	startReadyFloorMax = 3.0
	restartFloorMax    = 3.0
	hungStopSlack      = 100 * time.Millisecond
	throughputMin      = 5000.0
	idleRSSMax         = 20e6 // bytes: 20 MB
)

func goalStartReady(herald, floor Summary) Goal {
	g := Goal{Name: "Start to READY", Target: fmt.Sprintf("median < %v and ≤ %.0f× floor", startReadyMax, startReadyFloorMax)}
	if herald.N == 0 || floor.N == 0 {
		g.Verdict = Invalid
		return g
	}
	r := Ratio(herald.Median, floor.Median)
	g.Measured = fmt.Sprintf("%s (floor %s, %s)", ms(herald.Median), ms(floor.Median), ratio(r))
	g.Verdict = verdict(herald.Median < startReadyMax.Seconds() && r <= startReadyFloorMax)
	return g
}

func goalRestart(herald, floor Summary) Goal {
	g := Goal{Name: "Restart (idle)", Target: fmt.Sprintf("median ≤ %.0f× floor", restartFloorMax)}
	if herald.N == 0 || floor.N == 0 {
		g.Verdict = Invalid
		return g
	}
	r := Ratio(herald.Median, floor.Median)
	g.Measured = fmt.Sprintf("%s (floor %s, %s)", ms(herald.Median), ms(floor.Median), ratio(r))
	g.Verdict = verdict(r <= restartFloorMax)
	return g
}

// goalHungStop judges the slowest stop: every stop must end within the
// bound, not just the typical one.
func goalHungStop(stop Summary, adapterTimeout time.Duration) Goal {
	bound := adapterTimeout + hungStopSlack
	g := Goal{Name: "Stop with a hung adapter", Target: fmt.Sprintf("every stop ≤ adapter_timeout + %v = %v", hungStopSlack, bound)}
	if stop.N == 0 {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("max %s (median %s, n=%d)", ms(stop.Max), ms(stop.Median), stop.N)
	g.Verdict = verdict(stop.Max <= bound.Seconds())
	return g
}

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

func goalThroughput(perSec float64, cores int) Goal {
	g := Goal{Name: "Durable messages/s (webhook → store → echo → delivery)", Target: fmt.Sprintf("≥ %.0f/s on 2 cores", throughputMin)}
	if perSec <= 0 {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("%s on %d cores", rate(perSec), cores)
	g.Verdict = verdict(perSec >= throughputMin)
	return g
}

func goalIdleRSS(rss Summary) Goal {
	g := Goal{Name: "Idle RSS", Target: "≤ 20 MB"}
	if rss.N == 0 {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("%.1f MB (median of %d starts, VmRSS)", rss.Median/1e6, rss.N)
	g.Verdict = verdict(rss.Median <= idleRSSMax)
	return g
}

func verdict(ok bool) Verdict {
	if ok {
		return Pass
	}
	return Miss
}
