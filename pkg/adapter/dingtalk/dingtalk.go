// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Timing that is not configuration; tests shorten it.
const (
	// webhookMargin: a session webhook that expires sooner than this is
	// not used; the reply goes through the robot API.
	webhookMargin = 30 * time.Second
)

// maxFrame bounds one stream frame.
const maxFrame = 1 << 20

// Adapter is one DingTalk app's robot in Stream mode. Build it with New
// (or through the registry); see the adapter package for the lifecycle.
type Adapter struct {
	name    string
	conf    Config
	log     *logrus.Entry
	metrics adapter.Metrics
	life    *adapter.Life
	api     *client

	// progress of media parts, by idempotency key
	progress adapter.Progress

	backoff adapter.Backoff // between connection attempts; tests shorten it
	now     func() time.Time
}

// New checks conf, reads the client secret and builds the adapter. It does
// no network I/O and starts no goroutine.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
	}
	sec, err := conf.ClientSecret.Read()
	if err != nil {
		return nil, fmt.Errorf("dingtalk: client_secret: %w", err)
	}
	a := &Adapter{
		name:    env.Name,
		conf:    *conf,
		log:     env.Log,
		metrics: env.Metrics,
		life:    adapter.NewLife(TypeName, env.Report),
		backoff: adapter.ReconnectBackoff(),
		now:     time.Now,
	}
	a.api = newClient(a.conf.baseURL(), a.conf.ClientID, sec, a.log)
	a.life.OnStop(func(context.Context, error) { a.api.close() })
	return a, nil
}

// MaxMessageLen implements adapter.Limiter: max_message_len.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the stream goroutine and returns at once; an unreachable
// DingTalk is retried in the background.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	return a.life.Start(ctx, inbox, func(soft, _ context.Context) { a.stream(soft, inbox) })
}

// Stop closes the stream and cancels any Send, and waits for them. It
// returns within 100 ms of ctx ending; the error says what was still
// running then.
func (a *Adapter) Stop(ctx context.Context) error { return a.life.Stop(ctx, nil) }

// Interface guards
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
)
