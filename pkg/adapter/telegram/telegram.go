// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "telegram"

func init() {
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}

// Timing that is not configuration; tests shorten it.
const (
	defaultMinBackoff = time.Second
	defaultMaxBackoff = time.Minute
	// confirmTimeout bounds the getUpdates Stop makes to confirm stored
	// updates, so the next instance does not fetch them again.
	confirmTimeout = 2 * time.Second
	// stopGrace is how long Stop waits for the intake goroutine after its
	// context ended; every wait in it obeys the context, so this is only
	// the time to unwind (well inside the contract's 100 ms).
	stopGrace = 50 * time.Millisecond
)

var errStopped = errors.New("adapter stopped")

// Adapter is one Telegram bot. Build it with New (or through the registry);
// see the adapter package for the lifecycle.
type Adapter struct {
	name     string
	conf     Config
	log      *logrus.Entry
	reportFn func(adapter.Status)
	metrics  adapter.Metrics
	api      *client

	minBackoff, maxBackoff time.Duration
	confirmTimeout         time.Duration
	now                    func() time.Time

	// life ends at Stop; Send, Edit and Typing calls end with it.
	life       context.Context
	lifeCancel context.CancelFunc

	parts partStore

	mu       sync.Mutex
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	done     chan struct{}
	poller   *poller
	inflight int
	idle     chan struct{}
}

// New checks conf, reads the token and builds the adapter. It does no
// network I/O and starts no goroutine.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	if conf == nil {
		return nil, errors.New("telegram: no configuration")
	}
	env = env.Defaults()
	if err := conf.Validate(); err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	tok, err := conf.Token.Read()
	if err != nil {
		return nil, fmt.Errorf("telegram: token: %w", err)
	}
	if !validToken(tok.Reveal()) {
		return nil, fmt.Errorf("telegram: token: %s does not hold a bot token (<digits>:<letters, digits, _ or ->)", conf.Token)
	}
	a := &Adapter{
		name:           env.Name,
		conf:           *conf,
		log:            env.Log,
		reportFn:       env.Report,
		metrics:        env.Metrics,
		minBackoff:     defaultMinBackoff,
		maxBackoff:     defaultMaxBackoff,
		confirmTimeout: confirmTimeout,
		now:            time.Now,
	}
	a.conf.AllowedUpdates = append([]string(nil), conf.AllowedUpdates...)
	if a.name == "" {
		a.name = TypeName
	}
	a.api = newClient(a.conf.baseURL(), tok, a.conf.RequestTimeout)
	a.api.log = a.log
	a.life, a.lifeCancel = context.WithCancel(context.Background())
	return a, nil
}

func validToken(t string) bool {
	digits, rest, ok := 0, "", false
	for i := 0; i < len(t); i++ {
		if t[i] == ':' {
			rest, ok = t[i+1:], true
			break
		}
		if t[i] < '0' || t[i] > '9' {
			return false
		}
		digits++
	}
	if !ok || digits == 0 || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MaxMessageLen implements adapter.Limiter: max_message_len, default 4096.
// The core counts code points, Telegram UTF-16 code units; Send splits a
// part that is longer in UTF-16 (astral characters such as emoji count
// twice), so 4096 is safe.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the intake goroutine: getMe, then long polling. It
// returns at once; an unreachable Telegram is retried in the background.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	if inbox == nil {
		return errors.New("telegram: Start without an inbox")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.stopped:
		return errors.New("telegram: Start after Stop")
	case a.started:
		return errors.New("telegram: Start called twice")
	}
	a.started = true
	runCtx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.done = make(chan struct{})
	a.poller = newPoller(a, inbox, a.now())
	a.reportFn(adapter.Status{Phase: adapter.PhaseStarting})
	go func(p *poller, done chan struct{}) {
		defer close(done)
		p.run(runCtx)
	}(a.poller, a.done)
	return nil
}

// report passes st on unless Stop has already reported PhaseStopped. The
// lock orders reports: none can arrive after the final one.
func (a *Adapter) report(st adapter.Status) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.stopped {
		a.reportFn(st)
	}
}

// Stop cancels the intake (the in-flight long poll included) and any
// Send, waits for them, confirms stored updates to Telegram if ctx leaves
// time, and closes idle connections. It returns within 100 ms of ctx
// ending; the error says what was still running then.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	cancel, done, p := a.cancel, a.done, a.poller
	a.mu.Unlock()

	a.lifeCancel()
	if cancel != nil {
		cancel()
	}
	var err error
	if done != nil && !waitOrGrace(ctx, done) {
		err = fmt.Errorf("telegram: stop: intake still unwinding: %w", ctx.Err())
	}
	a.mu.Lock()
	var idle chan struct{}
	if a.inflight > 0 {
		a.idle = make(chan struct{})
		idle = a.idle
	}
	a.mu.Unlock()
	if idle != nil && !waitOrGrace(ctx, idle) && err == nil {
		err = fmt.Errorf("telegram: stop: sends still unwinding: %w", ctx.Err())
	}
	if err == nil && p != nil {
		a.confirm(ctx, p)
	}
	a.api.close()
	a.mu.Lock()
	a.reportFn(adapter.Status{Phase: adapter.PhaseStopped})
	a.mu.Unlock()
	return err
}

// waitOrGrace waits for ch; once ctx has ended it waits stopGrace more.
func waitOrGrace(ctx context.Context, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// confirm tells Telegram that the updates stored since the last poll are
// done, with one short getUpdates, so that the next instance does not fetch
// them again. Without it they come back once and the store deduplicates
// them: this only saves work, so it is skipped when ctx leaves no time.
func (a *Adapter) confirm(ctx context.Context, p *poller) {
	if p.fatal || p.offset <= p.sent || ctx.Err() != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.confirmTimeout)
	defer cancel()
	_, err := a.api.getUpdates(cctx, getUpdatesParams{Offset: p.offset, Limit: 1, AllowedUpdates: a.conf.AllowedUpdates})
	if err != nil {
		a.log.WithError(err).Info("telegram: could not confirm stored updates at stop; the next start fetches them again and the store deduplicates them")
		return
	}
	a.log.WithField("offset", p.offset).Debug("telegram: stored updates confirmed")
}

// begin registers a Send/Edit/Typing call; Stop waits for it.
func (a *Adapter) begin() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return errStopped
	}
	a.inflight++
	return nil
}

func (a *Adapter) end() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight--
	if a.inflight == 0 && a.idle != nil {
		close(a.idle)
		a.idle = nil
	}
}

// callCtx bounds one outbound call by request_timeout and by Stop.
func (a *Adapter) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	stop := context.AfterFunc(a.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// Interface guards
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
	_ adapter.Typer   = (*Adapter)(nil)
	_ adapter.Editor  = (*Adapter)(nil)
)
