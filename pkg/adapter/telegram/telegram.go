// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Timing that is not configuration; tests shorten it.
const (
	defaultMinBackoff = time.Second
	defaultMaxBackoff = time.Minute
	// confirmTimeout bounds the getUpdates Stop makes to confirm stored
	// updates, so the next instance does not fetch them again.
	confirmTimeout = 2 * time.Second
)

// Adapter is one Telegram bot. Build it with New (or through the registry);
// see the adapter package for the lifecycle.
type Adapter struct {
	name    string
	conf    Config
	log     *logrus.Entry
	metrics adapter.Metrics
	api     *client
	life    *adapter.Life

	minBackoff, maxBackoff time.Duration
	confirmTimeout         time.Duration
	now                    func() time.Time

	parts partStore

	// poller is the intake loop's state, set by Start; Stop reads it once
	// the loop has ended.
	poller atomic.Pointer[poller]
}

// New checks conf, reads the token and builds the adapter. It does no
// network I/O and starts no goroutine.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
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
		life:           adapter.NewLife(TypeName, env.Report),
		metrics:        env.Metrics,
		minBackoff:     defaultMinBackoff,
		maxBackoff:     defaultMaxBackoff,
		confirmTimeout: confirmTimeout,
		now:            time.Now,
	}
	a.conf.AllowedUpdates = append([]string(nil), conf.AllowedUpdates...)
	a.api = newClient(a.conf.baseURL(), tok, a.conf.RequestTimeout)
	a.api.log = a.log
	a.life.OnStop(func(ctx context.Context, err error) {
		if p := a.poller.Load(); p != nil && err == nil {
			a.confirm(ctx, p)
		}
		a.api.close()
	})
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
	p := newPoller(a, inbox, a.now())
	if err := a.life.Start(ctx, inbox, func(soft, _ context.Context) { p.run(soft) }); err != nil {
		return err
	}
	a.poller.Store(p)
	return nil
}

// Stop cancels the intake (the in-flight long poll included) and any
// Send, waits for them, confirms stored updates to Telegram if ctx leaves
// time, and closes idle connections. It returns within 100 ms of ctx
// ending; the error says what was still running then.
func (a *Adapter) Stop(ctx context.Context) error { return a.life.Stop(ctx, nil) }

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

// begin registers a Send/Edit/Typing call: Stop waits for it and cancels
// it. The call is refused once Stop has begun.
func (a *Adapter) begin(ctx context.Context, method string) (context.Context, func(), error) {
	ctx, end, err := a.life.Begin(ctx)
	if err != nil {
		return ctx, end, fmt.Errorf("telegram: %s: %w: %w", method, adapter.ErrTemporary, err)
	}
	return ctx, end, nil
}

// callCtx bounds one outbound call by request_timeout.
func (a *Adapter) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.conf.RequestTimeout)
}

// Interface guards
var (
	_ adapter.Adapter      = (*Adapter)(nil)
	_ adapter.Limiter      = (*Adapter)(nil)
	_ adapter.Typer        = (*Adapter)(nil)
	_ adapter.Editor       = (*Adapter)(nil)
	_ adapter.ButtonSender = (*Adapter)(nil)
)
