// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Adapter is one signal-cli account. Build it with New (or through the
// registry); see the adapter package for the lifecycle.
type Adapter struct {
	adapter.Base
	conf   Config
	tr     *http.Transport
	http   *http.Client
	cursor *cursor
	saves  adapter.SaveStreak // of the cursor; the event stream's goroutine only

	backoff adapter.Backoff // between connection attempts; tests shorten it
	now     func() time.Time
}

// New checks conf and builds the adapter. It does no network I/O and starts
// no goroutine. The id of the last stored event is kept in env.States
// (in memory only when they keep nothing).
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
	}
	a := &Adapter{
		Base:    adapter.NewBase(TypeName, env),
		conf:    *conf,
		cursor:  newCursor(env.States),
		backoff: adapter.ReconnectBackoff(),
		now:     time.Now,
	}
	dialer := &net.Dialer{Timeout: conf.RequestTimeout, KeepAlive: 30 * time.Second}
	a.tr = &http.Transport{
		// The daemon is local: no proxy. HTTP/1.1 only, so that the event
		// stream and each send have their own connection.
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: conf.RequestTimeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	// No http.Client.Timeout: every call carries a context deadline, and
	// the event stream has none (the idle timer watches it).
	a.http = &http.Client{Transport: a.tr}
	a.Life.OnStop(func(context.Context, error) { a.tr.CloseIdleConnections() })
	return a, nil
}

// MaxMessageLen implements adapter.Limiter: max_message_len, default 2000.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the intake goroutine, which holds the event stream open.
// It returns at once; a daemon that is down is retried in the background
// (the status board shows reconnecting).
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	return a.Life.Start(ctx, inbox, func(soft, _ context.Context) { a.intake(soft, inbox) })
}

// Stop ends the event stream and any Send, waits for them and closes idle
// connections. It returns within 100 ms of ctx ending.
func (a *Adapter) Stop(ctx context.Context) error { return a.Life.Stop(ctx, nil) }

// Interface guards
var (
	_ adapter.Adapter   = (*Adapter)(nil)
	_ adapter.Limiter   = (*Adapter)(nil)
	_ adapter.Recoverer = (*Adapter)(nil)
)
