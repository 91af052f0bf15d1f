// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Adapter is one Matrix bot account. Build it with New (or through the
// registry); see the adapter package for the lifecycle.
type Adapter struct {
	adapter.Base
	conf    Config
	api     *client
	state   stateFile
	invites map[string]bool

	backoff adapter.Backoff // between connection attempts; tests shorten it
	now     func() time.Time

	// uploads are the mxc:// URIs uploaded for parts whose message is
	// not sent yet; maxUpload is the homeserver's m.upload.size, 0 until
	// known, -1 when the homeserver cannot tell.
	uploads   adapter.Uploads
	maxUpload atomic.Int64
}

// New checks conf, reads the access token and builds the adapter. It does
// no network I/O and starts no goroutine.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
	}
	tok, err := conf.AccessToken.Read()
	if err != nil {
		return nil, fmt.Errorf("matrix: access_token: %w", err)
	}
	if t := tok.Reveal(); t == "" || strings.ContainsAny(t, " \t\r\n") {
		return nil, fmt.Errorf("matrix: access_token: %s does not hold an access token (empty or with white space)", conf.AccessToken)
	}
	a := &Adapter{
		Base:    adapter.NewBase(TypeName, env),
		conf:    *conf,
		state:   stateFile{states: env.States},
		invites: map[string]bool{},
		backoff: adapter.ReconnectBackoff(),
		now:     time.Now,
	}
	for _, u := range conf.JoinInvitesFrom {
		a.invites[u] = true
	}
	a.conf.JoinInvitesFrom = append([]string(nil), conf.JoinInvitesFrom...)
	a.api = newClient(a.conf.baseURL(), tok, a.conf.RequestTimeout, a.Log)
	a.Life.OnStop(func(context.Context, error) { a.api.close() })
	return a, nil
}

// MaxMessageLen implements adapter.Limiter: max_message_len.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the intake goroutine (whoami, then /sync long polling)
// and returns at once; an unreachable homeserver is retried in the
// background.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	return a.Life.Start(ctx, inbox, func(soft, _ context.Context) { a.run(soft, inbox) })
}

// Stop cancels the intake (the in-flight /sync included) and any Send,
// waits for them and closes idle connections. The since token needs no
// goodbye: it is saved after each stored batch.
func (a *Adapter) Stop(ctx context.Context) error { return a.Life.Stop(ctx, nil) }

// begin registers a Send: Stop waits for it and cancels it.
func (a *Adapter) begin(ctx context.Context) (context.Context, func(), error) {
	ctx, end, err := a.Life.Begin(ctx)
	if err != nil {
		return ctx, end, fmt.Errorf("matrix: send: %w: %w", adapter.ErrTemporary, err)
	}
	return ctx, end, nil
}

// Interface guards
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
)
