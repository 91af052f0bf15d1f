// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Adapter is one WhatsApp business phone number. It is an http.Handler for
// its callback URL (also returned by Routes).
type Adapter struct {
	adapter.Base
	conf Config
	path string
	now  func() time.Time

	appSecret   []byte
	verifyToken []byte
	api         *graph
	transport   *http.Transport

	window windows
	// uploads remembers the media id uploaded for a part whose message is
	// not sent yet, so that its retry does not upload the file again.
	uploads adapter.Uploads
	// live holds the inbox while intake is open: nil before Start and
	// after Stop, which makes the handler answer 503.
	live atomic.Pointer[liveInbox]

	statusMu sync.Mutex
	statuses map[string]int64 // status webhooks seen, by status
	reported adapter.Status   // the last status reported, under statusMu
	creds    adapter.CredentialCheck
	refuse   adapter.Refuser
}

type liveInbox struct{ inbox adapter.Inbox }

// New checks conf, reads the credentials and the saved window record. It
// does no network I/O and starts no goroutine.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
	}
	a := &Adapter{
		conf:     *conf,
		now:      time.Now,
		statuses: map[string]int64{},
	}
	report := env.Report
	env.Report = func(st adapter.Status) {
		a.statusMu.Lock()
		a.reported = st
		a.statusMu.Unlock()
		report(st)
	}
	a.Base = adapter.NewBase(TypeName, env)
	a.refuse = adapter.Refuser{Log: a.Log, Metrics: a.Metrics, Prefix: TypeName}
	a.creds = adapter.CredentialCheck{Life: a.Life, Log: a.Log, Metrics: a.Metrics, Backoff: adapter.CheckBackoff()}
	if a.path, err = adapter.CallbackPath(conf.Path, "/whatsapp/", a.Name); err != nil {
		return nil, fmt.Errorf("whatsapp: %w", err)
	}
	var rd adapter.Secrets
	tok := rd.Read("access_token", conf.AccessToken)
	sec := rd.Read("app_secret", conf.AppSecret)
	vt := rd.Read("verify_token", conf.VerifyToken)
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("whatsapp: %w", err)
	}
	a.appSecret, a.verifyToken = sec.Bytes(), vt.Bytes()
	a.transport = http.DefaultTransport.(*http.Transport).Clone()
	a.api = &graph{
		base:   strings.TrimRight(conf.GraphURL, "/") + "/" + conf.APIVersion,
		token:  tok,
		client: &http.Client{Transport: a.transport},
	}
	a.window.states = env.States
	if err := a.window.load(); err != nil {
		a.Log.WithError(err).Warn("whatsapp: ignoring the saved customer-service window record; free-form sends are tried and WhatsApp decides")
	}
	a.Life.OnStop(func(context.Context, error) { a.transport.CloseIdleConnections() })
	return a, nil
}

// Path returns the callback URL path.
func (a *Adapter) Path() string { return a.path }

// Routes returns the callback URL's GET (verification handshake) and POST
// (events) routes (adapter.RouteProvider).
func (a *Adapter) Routes() []adapter.Route {
	return []adapter.Route{
		{Pattern: http.MethodGet + " " + a.path, Handler: a},
		{Pattern: http.MethodPost + " " + a.path, Handler: a},
	}
}

// MaxMessageLen implements adapter.Limiter: max_message_len, at most 4096.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start opens intake at once (the callback URL stores events from now on)
// and checks the access token in the background with GET
// /{phone-number-id}: Connected once the Graph API accepts it, Fatal when
// it rejects it, retried with backoff while the Graph API is unreachable.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	if err := a.Life.Start(ctx, inbox, func(soft, _ context.Context) { a.check(soft) }); err != nil {
		return err
	}
	a.live.Store(&liveInbox{inbox: inbox})
	if a.Life.Stopping() {
		// A Stop that ran meanwhile closed intake before it was open.
		a.live.Store(nil)
		return nil
	}
	a.Log.WithField("path", a.path).Info("whatsapp: callback URL live")
	return nil
}

// Stop closes intake (the callback URL answers 503 from now on, and Meta
// retries), ends the token check and waits for Sends in flight, within
// 100 ms of ctx ending.
func (a *Adapter) Stop(ctx context.Context) error {
	return a.Life.Stop(ctx, func(context.Context) { a.live.Store(nil) })
}

// check verifies the access token until the Graph API accepts or rejects
// it, then waits for Stop.
func (a *Adapter) check(ctx context.Context) {
	a.creds.Run(ctx, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
		defer cancel()
		var out struct {
			ID string `json:"id"`
		}
		if err := a.api.do(cctx, http.MethodGet, "/"+a.conf.PhoneNumberID+"?fields=id", nil, &out); err != nil {
			return classify("check access token", err, false, a.logClamp)
		}
		return nil
	})
}

// rejected records that a Send found the access token rejected: the status
// board shows the platform as failed and the journal has the fatal event,
// once.
func (a *Adapter) rejected(err error) {
	a.creds.Rejected(err, "whatsapp: access token rejected; replies fail until it is replaced: fix it, then reload herald")
}

func (a *Adapter) logClamp(given string, used time.Duration) {
	adapter.LogClamp(a.Log, "whatsapp: Retry-After", given, used)
}

// Interface guards
var (
	_ adapter.Adapter       = (*Adapter)(nil)
	_ adapter.RouteProvider = (*Adapter)(nil)
	_ adapter.Limiter       = (*Adapter)(nil)
	_ http.Handler          = (*Adapter)(nil)
)
