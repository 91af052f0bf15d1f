// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Adapter is one Mattermost bot. Build it with New (or through the
// registry); see the adapter package for the lifecycle.
type Adapter struct {
	adapter.Base
	conf   Config
	api    *client
	cursor cursorFile

	backoff adapter.Backoff // between connection attempts; tests shorten it
	now     func() time.Time

	mu sync.Mutex
	me *user // the bot, learnt at connect
	// last is the cursor: create_at (ms) of the newest post stored, every
	// earlier one stored too. saved is what the state file holds.
	last, saved int64
	saves       adapter.SaveStreak
	// uploads are the file ids uploaded for parts whose post is not
	// made yet.
	uploads adapter.Uploads
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
		return nil, fmt.Errorf("mattermost: token: %w", err)
	}
	a := &Adapter{
		Base:    adapter.NewBase(TypeName, env),
		conf:    *conf,
		cursor:  cursorFile{states: env.States},
		backoff: adapter.ReconnectBackoff(),
		now:     time.Now,
	}
	a.api = newClient(a.conf.baseURL(), tok, a.conf.RequestTimeout, a.Log)
	a.Life.OnStop(func(context.Context, error) { a.api.close() })
	return a, nil
}

// MaxMessageLen implements adapter.Limiter.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches intake: it loads the saved cursor and connects in the
// background; it returns at once.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	return a.Life.Start(ctx, inbox, func(soft, _ context.Context) {
		a.loadCursor()
		a.run(soft, inbox)
	})
}

// Stop ends intake, cancels any Send and closes connections; it returns
// within 100 ms of ctx ending.
func (a *Adapter) Stop(ctx context.Context) error { return a.Life.Stop(ctx, nil) }

// loadCursor restores the saved cursor; whatever goes wrong, the adapter
// starts from the time of its first connection.
func (a *Adapter) loadCursor() {
	a.cursor.cleanTemp()
	at, err := a.cursor.load()
	if err != nil {
		a.Log.WithError(err).Warn("mattermost: ignoring an unreadable cursor; posts made while herald was down are not fetched")
		return
	}
	a.mu.Lock()
	a.last, a.saved = at, at
	a.mu.Unlock()
	if at > 0 {
		a.Log.WithField("last_post_at", at).Info("mattermost: catching up from the saved cursor")
	}
}

// advance moves the cursor to at (ms) once the post created then was
// stored, and saves it.
func (a *Adapter) advance(at int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if at <= a.last {
		return
	}
	a.last = at
	a.saveLocked()
}

// saveLocked writes the cursor if it changed; a.mu held.
func (a *Adapter) saveLocked() {
	if a.last == a.saved {
		return
	}
	err := a.cursor.save(a.last)
	if a.saves.Done(a.Log.WithField("file", a.cursor.where()), err, "mattermost", "the cursor", "a restart catches up from an older post (the store drops duplicates)") {
		a.saved = a.last
	}
}

// lastPostAt returns the cursor.
func (a *Adapter) lastPostAt() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// bot returns the bot user, asking the server if it is not known yet.
func (a *Adapter) bot(ctx context.Context) (*user, error) {
	a.mu.Lock()
	me := a.me
	a.mu.Unlock()
	if me != nil {
		return me, nil
	}
	me, err := a.api.me(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.me = me
	a.mu.Unlock()
	return me, nil
}

// begin registers an outbound call: Stop waits for it and cancels it.
func (a *Adapter) begin(ctx context.Context, method string) (context.Context, func(), error) {
	ctx, end, err := a.Life.Begin(ctx)
	if err != nil {
		return ctx, end, fmt.Errorf("mattermost: %s: %w: %w", method, adapter.ErrTemporary, err)
	}
	return ctx, end, nil
}

// Interface guards
var (
	_ adapter.Adapter   = (*Adapter)(nil)
	_ adapter.Limiter   = (*Adapter)(nil)
	_ adapter.Recoverer = (*Adapter)(nil)
)
