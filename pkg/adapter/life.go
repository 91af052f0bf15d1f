// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultStopGrace is how long Stop still waits for an adapter's goroutines
// after its context ended: every wait in them obeys their context, so this
// is only the time to unwind, well inside the contract's 100 ms.
const DefaultStopGrace = 50 * time.Millisecond

// ErrStopped is returned by Life.Begin once Stop has been called.
var ErrStopped = errors.New("adapter stopped")

// Life is the start-once, stop-once lifecycle every adapter embeds, so that
// none writes its own state machine. Build it with NewLife (NewBase does,
// for the adapter's Base) in the adapter's constructor; the adapter's Start and Stop call Life.Start and Life.Stop.
//
// A started adapter runs one intake goroutine (run, given to Start) and any
// number of helpers launched with Go. They see two contexts:
//
//   - soft ends when Stop begins: stop dialling, stop backing off, stop
//     taking new events, say goodbye to the platform (close frames);
//   - hard ends CloseBound later, or when Stop's context ends: drop every
//     connection now. It also ends with Start's context unless the Life is
//     Detached.
//
// Outbound calls (Send, Edit, Typing) bracket themselves with Begin, so
// that Stop waits for them and cancels them with hard.
type Life struct {
	typ    string
	report func(Status)

	// CloseBound is how long Stop lets run return on its own after soft
	// ended (a close handshake) before it ends hard. Zero ends hard at once.
	// Set before Start.
	CloseBound time.Duration
	// Grace is how long Stop still waits after its context ended
	// (DefaultStopGrace). Set before Start.
	Grace time.Duration
	// Detached: hard does not end with Start's context, only with Stop
	// (connections that must outlive a cancelled Start context by a close
	// handshake). Set before Start.
	Detached bool

	calls       context.Context // ends with hard, or at Stop if never started
	callsCancel context.CancelFunc

	mu          sync.Mutex
	started     bool
	stopping    atomic.Bool // set under mu, read without it
	final       bool        // PhaseStopped reported: no report after it
	soft        context.Context
	softCancel  context.CancelFunc
	hardCancel  context.CancelFunc
	stopCtx     context.Context
	runDone     chan struct{}
	allDone     chan struct{}  // closed when run and the Go helpers ended
	wg          sync.WaitGroup // run and Go helpers
	callWG      sync.WaitGroup // Begin calls
	stopDone    chan struct{}
	stopErr     error
	stoppedHook []func(ctx context.Context, err error)
}

// NewLife returns the lifecycle of an adapter of type typ (used in error
// messages) that reports to report (nil: nowhere).
func NewLife(typ string, report func(Status)) *Life {
	if report == nil {
		report = func(Status) {}
	}
	l := &Life{typ: typ, report: report, Grace: DefaultStopGrace}
	l.calls, l.callsCancel = context.WithCancel(context.Background())
	return l
}

// Start launches run(soft, hard) in a goroutine and reports PhaseStarting.
// It fails for a nil inbox, a second Start, or a Start after Stop. An
// adapter without an intake goroutine (one that serves a route) passes a
// nil run and reports its own state.
func (l *Life) Start(ctx context.Context, inbox Inbox, run func(soft, hard context.Context)) error {
	if inbox == nil {
		return fmt.Errorf("%s: start: nil inbox", l.typ)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopping.Load():
		return fmt.Errorf("%s: start: adapter already stopped", l.typ)
	case l.started:
		return fmt.Errorf("%s: start: already started", l.typ)
	}
	l.started = true
	base := ctx
	if l.Detached {
		base = context.WithoutCancel(ctx)
	}
	hard, hardCancel := context.WithCancel(base)
	stop := context.AfterFunc(hard, l.callsCancel)
	l.hardCancel = func() { hardCancel(); stop(); l.callsCancel() }
	l.soft, l.softCancel = context.WithCancel(hard)
	l.runDone = make(chan struct{})
	l.allDone = make(chan struct{})
	if run == nil {
		close(l.runDone)
		close(l.allDone)
		return nil
	}
	l.report(Status{Phase: PhaseStarting})
	l.wg.Add(1)
	go func(soft context.Context, done chan struct{}) {
		defer l.wg.Done()
		defer close(done)
		run(soft, hard)
	}(l.soft, l.runDone)
	go func(all chan struct{}) {
		l.wg.Wait()
		close(all)
	}(l.allDone)
	return nil
}

// Go runs f in a goroutine that Stop waits for. Call it only from run or
// from another goroutine launched by Go, so that the count never rises
// from zero.
func (l *Life) Go(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// Begin registers an outbound call: Stop waits for it (bounded by its own
// context). It fails with ErrStopped once Stop has begun. The returned
// context ends with ctx, and when Stop gives up waiting; call end when the
// call returns.
func (l *Life) Begin(ctx context.Context) (context.Context, func(), error) {
	l.mu.Lock()
	if l.stopping.Load() {
		l.mu.Unlock()
		return ctx, func() {}, fmt.Errorf("%s: %w", l.typ, ErrStopped)
	}
	l.callWG.Add(1)
	l.mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.calls, cancel)
	return cctx, func() { stop(); cancel(); l.callWG.Done() }, nil
}

// RunDone is closed when run has returned; nil before Start.
func (l *Life) RunDone() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runDone
}

// Done is closed once run and every Go helper have returned (with or
// without Stop: Start's context may end them); nil before Start.
func (l *Life) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allDone
}

// Report passes st to the status board unless Stop has already reported
// PhaseStopped: no report comes after the final one.
func (l *Life) Report(st Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.final {
		l.report(st)
	}
}

// Stopping reports whether Stop has been called.
func (l *Life) Stopping() bool { return l.stopping.Load() }

// StopContext returns the context given to Stop (nil before Stop). It is
// set before soft ends, so a goroutine that saw soft end may use it to
// bound a close handshake.
func (l *Life) StopContext() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopCtx
}

// OnStop adds f to what the first Stop runs once the goroutines have ended
// or been given up on, before PhaseStopped is reported: close idle
// connections, confirm progress to the platform. f gets Stop's context,
// which it must obey, and the error Stop is about to return.
func (l *Life) OnStop(f func(ctx context.Context, err error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stoppedHook = append(l.stoppedHook, f)
}

// Stop ends the adapter: soft at once, hard after CloseBound or when ctx
// ends, then it waits for run, the Go helpers and the Begin calls until ctx
// ends plus Grace; then it runs the OnStop functions and reports
// PhaseStopped with the error, if any, that says what was still running.
// graceful, if not nil, runs first, after Stopping turned true and before
// soft ends (a close frame on the open connection); it must obey ctx.
//
// A later Stop waits for the first one's result, bounded by its own ctx.
func (l *Life) Stop(ctx context.Context, graceful func(ctx context.Context)) error {
	l.mu.Lock()
	if l.stopDone != nil {
		done := l.stopDone
		l.mu.Unlock()
		select {
		case <-done:
			return l.stopErr
		case <-ctx.Done():
			return fmt.Errorf("%s: stop: %w", l.typ, ctx.Err())
		}
	}
	l.stopping.Store(true)
	l.stopCtx = ctx
	l.stopDone = make(chan struct{})
	started := l.started
	l.mu.Unlock()

	var err error
	if started {
		if graceful != nil {
			graceful(ctx)
		}
		l.softCancel()
		if l.CloseBound > 0 {
			l.wait(ctx, l.runDone, l.CloseBound)
		}
		l.hardCancel()
	} else {
		l.callsCancel()
	}
	// No Begin call can start now (stopping is set), so waiting on callWG
	// is safe.
	all := make(chan struct{})
	go func(goroutines <-chan struct{}) {
		if goroutines != nil {
			<-goroutines
		}
		l.callWG.Wait()
		close(all)
	}(l.Done())
	if !l.wait(ctx, all, 0) {
		err = fmt.Errorf("%s: stop: goroutines still running after the context ended: %w", l.typ, context.Cause(ctx))
	}
	l.mu.Lock()
	hooks := l.stoppedHook
	l.mu.Unlock()
	for _, f := range hooks {
		f(ctx, err)
	}
	l.mu.Lock()
	l.stopErr = err
	l.report(Status{Phase: PhaseStopped, Err: err})
	l.final = true
	close(l.stopDone)
	l.mu.Unlock()
	return err
}

// wait waits for done, at most bound (if > 0), and at most Grace after ctx
// ended. It reports whether done was closed.
func (l *Life) wait(ctx context.Context, done <-chan struct{}, bound time.Duration) bool {
	var boundC <-chan time.Time
	if bound > 0 {
		t := time.NewTimer(bound)
		defer t.Stop()
		boundC = t.C
	}
	select {
	case <-done:
		return true
	case <-boundC:
		return false
	case <-ctx.Done():
	}
	t := time.NewTimer(l.Grace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
