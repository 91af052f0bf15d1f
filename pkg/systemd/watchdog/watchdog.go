// SPDX-License-Identifier: Apache-2.0

package watchdog

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/systemd/notify"
)

// Interval returns how often to ping: half of WatchdogSec, from
// $WATCHDOG_USEC, or false if the watchdog is not enabled for this process
// (unset, malformed, or $WATCHDOG_PID names another process). The
// environment is left as it is; children get a cleaned one.
func Interval() (time.Duration, bool) {
	// SdWatchdogEnabled returns the full timeout, and unsetEnv=true would
	// hide WATCHDOG_* from any later reader.
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d / 2, true
}

// Run checks health every interval and sends WATCHDOG=1 through n after each
// check that returned nil within checkTimeout, then calls onPing (may be
// nil). It blocks until ctx ends; interval <= 0 returns at once.
//
// The first check runs immediately. checkTimeout <= 0 or above interval/2 is
// taken as interval/2, so a slow but healthy check cannot delay pings past
// WatchdogSec. check gets a context with that deadline.
//
// A check that does not answer in time keeps running in its goroutine, and
// no new check starts until it returns: there is at most one outstanding
// check, and every tick meanwhile counts as a failure. A failing streak is
// logged once as a warning (with the reason and MESSAGE_ID
// logging.MsgWatchdogCheckFailed), its recovery once at info. If
// check ignores its context, its goroutine outlives Run until it returns.
func Run(ctx context.Context, n *notify.Notifier, interval, checkTimeout time.Duration,
	check func(context.Context) error, log *logrus.Entry, onPing func()) {
	if interval <= 0 {
		return
	}
	if checkTimeout <= 0 || checkTimeout > interval/2 {
		checkTimeout = interval / 2
	}
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	r := &runner{n: n, checkTimeout: checkTimeout, check: check, log: log, onPing: onPing}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		r.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

type runner struct {
	n            *notify.Notifier
	checkTimeout time.Duration
	check        func(context.Context) error
	log          *logrus.Entry
	onPing       func()

	pending      chan error // result of a check that overran, nil if none
	pendingSince time.Time

	failures  int // in the current streak
	failSince time.Time
}

func (r *runner) tick(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if r.pending != nil {
		select {
		case <-r.pending:
			// The overrunning check came back; its answer is stale. Ask again.
			r.pending = nil
		default:
			r.fail(fmt.Errorf("health check still running after %v", time.Since(r.pendingSince).Round(time.Millisecond)))
			return
		}
	}

	start := time.Now()
	result := make(chan error, 1)
	cctx, cancel := context.WithTimeout(ctx, r.checkTimeout)
	go func() {
		defer cancel()
		result <- r.check(cctx)
	}()
	timer := time.NewTimer(r.checkTimeout)
	defer timer.Stop()
	select {
	case err := <-result:
		switch {
		case err != nil:
			r.fail(fmt.Errorf("health check: %w", err))
		case time.Since(start) > r.checkTimeout:
			r.fail(fmt.Errorf("health check answered after %v, limit %v", time.Since(start).Round(time.Millisecond), r.checkTimeout))
		default:
			r.ping()
		}
	case <-timer.C:
		r.pending, r.pendingSince = result, start
		r.fail(fmt.Errorf("health check did not answer within %v", r.checkTimeout))
	case <-ctx.Done():
		// Stopping: the check's context is cancelled with ctx.
	}
}

func (r *runner) ping() {
	if r.failures > 0 {
		r.log.WithFields(logrus.Fields{
			"failed_checks": r.failures,
			"failing_for":   time.Since(r.failSince).Round(time.Millisecond).String(),
		}).Info("watchdog: health check passes again; resuming WATCHDOG=1 pings")
		r.failures = 0
	}
	_ = r.n.Watchdog() // errors are logged by the notifier
	if r.onPing != nil {
		r.onPing()
	}
}

func (r *runner) fail(err error) {
	r.failures++
	entry := r.log.WithError(err)
	if r.failures > 1 {
		entry.WithField("failed_checks", r.failures).Debug("watchdog: health check still failing; no WATCHDOG=1")
		return
	}
	r.failSince = time.Now()
	logging.Event(entry, logging.MsgWatchdogCheckFailed).Warn("watchdog: health check failed; withholding WATCHDOG=1 so systemd restarts herald if this lasts WatchdogSec")
}
