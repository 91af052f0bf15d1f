// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/logging"
)

// errLinkDisabled is the PhaseFatal cause when Slack turns Socket Mode off.
var errLinkDisabled = fmt.Errorf("slack: %w: Socket Mode was disabled for the app (disconnect link_disabled)", adapter.ErrUnauthorized)

type attemptResult struct {
	c   *conn
	err error
}

// supervise owns the connections. It keeps one current connection; on a
// disconnect warning or refresh request it opens the next one while the
// current one is still read, switches when the new one has said hello and
// only then closes the old one, so no event is left on a dropped socket.
// Connection failures are retried with jittered exponential backoff;
// credential errors and link_disabled end in PhaseFatal.
//
// soft ends when Stop begins: intake stops, and every connection is closed
// within Stop's context.
func (a *Adapter) supervise(startCtx, soft context.Context) {
	ctx := a.runCtx
	var (
		cur      *conn
		attempt  chan attemptResult // non-nil while a connection attempt runs
		abort    context.CancelFunc // cancels the running attempt
		retry    *time.Timer        // non-nil while a retry is scheduled
		retryAt  time.Time
		fails    int // consecutive failed attempts
		attempts int
		rival    = rivals{window: a.conf.ConflictWindow}
		recheck  *time.Timer // non-nil while another look at num_connections is due
	)
	// start opens the next connection; reconnect counts it as a reconnect
	// (a look at num_connections is not one).
	start := func(reconnect bool) {
		if reconnect && attempts > 0 {
			a.Metrics.Reconnect()
		}
		attempts++
		actx, cancel := context.WithCancel(ctx)
		ch := make(chan attemptResult, 1)
		attempt, abort = ch, cancel
		a.Life.Go(func() {
			c, err := a.connect(actx)
			ch <- attemptResult{c, err}
		})
	}
	schedule := func(d time.Duration) {
		if retry != nil {
			retry.Stop()
		}
		retry = time.NewTimer(d)
		retryAt = time.Now().Add(d)
	}
	// end closes what is open: the current connection and one still being
	// set up, each with a close frame bounded by closeWait and ctx.
	end := func(ctx context.Context) {
		if retry != nil {
			retry.Stop()
		}
		if recheck != nil {
			recheck.Stop()
		}
		conns := []*conn{cur}
		if attempt != nil {
			abort()
			conns = append(conns, (<-attempt).c)
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			if c != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a.closeConn(ctx, c)
				}()
			}
		}
		wg.Wait()
	}
	fatal := func(err error) {
		logging.Event(a.Log, logging.MsgAdapterFatal).WithError(err).Error("slack: giving up: no retry can fix this")
		a.Life.Report(adapter.Status{Phase: adapter.PhaseFatal, Err: err})
		a.intakeCancel()
		end(ctx)
	}

	start(true)
	for {
		var curDone <-chan struct{}
		var curDisc <-chan string
		if cur != nil {
			curDone, curDisc = cur.done, cur.disc
		}
		var retryC, recheckC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		if recheck != nil {
			recheckC = recheck.C
		}
		select {
		case <-soft.Done():
			a.intakeCancel()
			end(a.Life.StopContext())
			return
		case <-startCtx.Done():
			a.intakeCancel()
			sctx, cancel := context.WithTimeout(ctx, a.closeWait)
			end(sctx)
			cancel()
			return

		case r := <-attempt:
			attempt = nil
			abort()
			if r.err != nil {
				if r.c != nil {
					r.c.kill()
				}
				if errors.Is(r.err, adapter.ErrUnauthorized) {
					fatal(r.err)
					return
				}
				fails++
				d := a.delay(fails, r.err)
				schedule(d)
				if cur != nil {
					a.Log.WithError(r.err).Warnf("slack: opening the next connection failed, retrying in %v; the current one stays open", d.Round(time.Millisecond))
					continue
				}
				a.Log.WithError(r.err).Warnf("slack: connecting failed, retrying in %v", d.Round(time.Millisecond))
				a.Life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: retryAt, Err: r.err, Alarm: rival.alarm})
				continue
			}
			fails = 0
			r.c.log.WithField("host", r.c.host).Info("slack: connected")
			was := rival.alarm
			again := rival.observe(r.c, time.Now())
			if recheck != nil {
				recheck.Stop()
				recheck = nil
			}
			if again {
				recheck = time.NewTimer(rival.window)
			}
			if cur != nil {
				old := cur
				a.Life.Go(func() { a.closeConn(ctx, old) })
				cur = r.c
				if rival.alarm != was {
					a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected, Alarm: rival.alarm})
				}
				continue
			}
			cur = r.c
			a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected, Alarm: rival.alarm})

		case reason := <-curDisc:
			if reason == reasonLinkDisabled {
				fatal(errLinkDisabled)
				return
			}
			// warning, refresh_requested or a reason herald does not know:
			// open the next connection before this one goes away.
			if attempt == nil {
				if retry != nil {
					retry.Stop()
					retry = nil
				}
				start(true)
			}

		case <-curDone:
			dropped := cur
			cur = nil
			if dropped.linkDisabled() {
				fatal(errLinkDisabled)
				return
			}
			err := dropped.err
			dropped.log.WithError(err).Warn("slack: connection lost")
			switch {
			case attempt != nil:
				a.Life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: time.Now(), Err: err, Alarm: rival.alarm})
			case retry != nil:
				a.Life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: retryAt, Err: err, Alarm: rival.alarm})
			default:
				if time.Since(dropped.helloAt) >= a.stableAfter {
					fails = 0
				} else {
					fails++
				}
				if fails == 0 {
					a.Life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: time.Now(), Err: err, Alarm: rival.alarm})
					start(true)
					continue
				}
				schedule(a.delay(fails, nil))
				a.Life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: retryAt, Err: err, Alarm: rival.alarm})
			}

		case <-retryC:
			retry = nil
			start(true)

		case <-recheckC:
			// Look at num_connections again on a fresh connection, with the
			// same switch as a refresh. While herald is reconnecting, the
			// next connection's hello is that look.
			recheck = nil
			if cur != nil && attempt == nil {
				start(false)
			}
		}
	}
}

// delay is the wait before attempt n+1 after n consecutive failures: the
// shared backoff from backoffMin, and never shorter than a Retry-After
// carried by err.
func (a *Adapter) delay(n int, err error) time.Duration {
	d := a.backoff.Delay(n - 1)
	if ra, ok := adapter.RetryAfter(err); ok && ra > d {
		d = ra
	}
	return d
}
