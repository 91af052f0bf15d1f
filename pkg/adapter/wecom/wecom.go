// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Adapter is one WeCom self-built application. It is an http.Handler for
// its callback URL (also returned by Routes).
type Adapter struct {
	name    string
	conf    Config
	path    string
	log     *logrus.Entry
	metrics adapter.Metrics
	life    *adapter.Life
	now     func() time.Time

	crypt     *crypter
	api       *api
	transport *http.Transport
	// progress of media parts, by idempotency key
	progress adapter.Progress

	intake adapter.Intake
	creds  adapter.CredentialCheck
	refuse adapter.Refuser
}

// New checks conf and reads the credentials. It does no network I/O and
// starts no goroutine.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
	}
	a := &Adapter{name: env.Name, conf: *conf, log: env.Log, metrics: env.Metrics, now: time.Now}
	a.refuse = adapter.Refuser{Log: a.log, Metrics: a.metrics, Prefix: TypeName}
	a.life = adapter.NewLife(TypeName, env.Report)
	a.creds = adapter.CredentialCheck{Life: a.life, Log: a.log, Metrics: a.metrics, Backoff: adapter.CheckBackoff()}
	if a.path, err = adapter.CallbackPath(conf.Path, "/wecom/", a.name); err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	var rd adapter.Secrets
	sec := rd.Read("secret", conf.Secret)
	tok := rd.Read("token", conf.Token)
	key := rd.Read("encoding_aes_key", conf.EncodingAESKey)
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	if a.crypt, err = newCrypter(tok.Reveal(), key.Reveal(), conf.CorpID); err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	a.transport = http.DefaultTransport.(*http.Transport).Clone()
	a.api = newAPI(conf.APIURL, conf.CorpID, sec, &http.Client{Transport: a.transport}, conf.RequestTimeout)
	a.life.OnStop(func(context.Context, error) { a.transport.CloseIdleConnections() })
	return a, nil
}

// Path returns the callback URL path.
func (a *Adapter) Path() string { return a.path }

// Routes returns the callback URL's GET (URL verification) and POST
// (messages) routes (adapter.RouteProvider).
func (a *Adapter) Routes() []adapter.Route {
	return adapter.CallbackRoutes(a.path, a)
}

// MaxMessageLen implements adapter.Limiter: max_message_len.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start opens intake at once (the callback URL stores messages from now
// on) and fetches an access token in the background: Connected once
// WeCom issues one, Fatal when it rejects the corp id or secret, retried
// with backoff while WeCom is unreachable.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	if err := a.life.Start(ctx, inbox, func(soft, _ context.Context) { a.check(soft) }); err != nil {
		return err
	}
	if a.intake.Open(a.life, inbox) {
		a.log.WithField("path", a.path).Info("wecom: callback URL live")
	}
	return nil
}

// Stop closes intake (the callback URL answers 503 from now on, and WeCom
// retries), ends the token check and waits for Sends in flight, within
// 100 ms of ctx ending.
func (a *Adapter) Stop(ctx context.Context) error {
	return a.life.Stop(ctx, func(context.Context) { a.intake.Close() })
}

// check fetches an access token until WeCom issues or refuses one, then
// waits for Stop.
func (a *Adapter) check(ctx context.Context) {
	a.creds.Run(ctx, func(ctx context.Context) error {
		if _, err := a.api.accessToken(ctx); err != nil {
			return classify("get access token", err, false)
		}
		return nil
	})
}

// rejected records that a Send found the credentials rejected: the status
// board shows the platform as failed and the journal has the fatal event,
// once.
func (a *Adapter) rejected(err error) {
	a.creds.Rejected(err, "wecom: credentials rejected; replies fail until they are fixed: fix them, then reload herald")
}

// Interface guards
var (
	_ adapter.Adapter       = (*Adapter)(nil)
	_ adapter.RouteProvider = (*Adapter)(nil)
	_ adapter.Limiter       = (*Adapter)(nil)
	_ http.Handler          = (*Adapter)(nil)
)
