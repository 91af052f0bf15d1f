// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook/internal/signature"
)

// MetaReplyURL is the message.Inbound.Meta key (copied to Outbound.Meta)
// holding the per-message reply URL given by the sender.
const MetaReplyURL = "reply_url"

// Adapter is one webhook platform instance. It is an http.Handler for its
// inbound route (also returned by Routes).
type Adapter struct {
	name    string
	cfg     Config
	path    string
	log     *logrus.Entry
	metrics adapter.Metrics
	now     func() time.Time
	// waitTimer starts the timer of a ?wait= request (tests replace it).
	waitTimer func(time.Duration) (<-chan time.Time, func() bool)

	githubKey   []byte // inbound, X-Hub-Signature-256: the secret as written
	standardKey []byte // inbound, Standard Webhooks: whsec_ decoded or raw
	outKey      []byte // outbound Standard Webhooks key; nil: unsigned
	replyURL    *url.URL
	allow       allowList

	transport *http.Transport
	client    *http.Client

	life *adapter.Life
	// live holds the inbox while intake is open: nil before Start and after
	// Stop, which is what makes the handler answer 503.
	live atomic.Pointer[liveInbox]

	warn    adapter.LogLimiter
	waiters waiters
}

type liveInbox struct{ inbox adapter.Inbox }

// New builds an adapter from a decoded configuration. It validates c and
// reads the secrets; it does no network I/O and starts no goroutine.
func New(c *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, c, env)
	if err != nil {
		return nil, err
	}
	a := &Adapter{
		name:    env.Name,
		cfg:     *c,
		log:     env.Log,
		metrics: env.Metrics,
		now:     time.Now,
		life:    adapter.NewLife(TypeName, env.Report),

		waitTimer: newWaitTimer,
	}
	a.cfg.ReplyURLAllow = append([]string(nil), c.ReplyURLAllow...)
	a.path = c.Path
	if a.path == "" {
		a.path = "/hooks/" + env.Name
		if err := validPath(a.path); err != nil {
			return nil, fmt.Errorf("webhook: default path from instance name: %w", err)
		}
	}
	if !c.InsecureNoSignature {
		v, err := c.Secret.Read()
		if err != nil {
			return nil, fmt.Errorf("webhook: secret: %w", err)
		}
		a.githubKey = v.Bytes()
		if c.Signature != SchemeGitHub {
			if a.standardKey, err = signature.StandardKey(v.Bytes()); err != nil {
				return nil, fmt.Errorf("webhook: secret (%s): %w", c.Secret, err)
			}
		}
	}
	if !c.OutboundSecret.IsZero() {
		v, err := c.OutboundSecret.Read()
		if err != nil {
			return nil, fmt.Errorf("webhook: outbound_secret: %w", err)
		}
		if a.outKey, err = signature.StandardKey(v.Bytes()); err != nil {
			return nil, fmt.Errorf("webhook: outbound_secret (%s): %w", c.OutboundSecret, err)
		}
	}
	if c.ReplyURL != "" {
		if a.replyURL, err = parseReplyURL(c.ReplyURL); err != nil {
			return nil, fmt.Errorf("webhook: reply_url: %w", err)
		}
	}
	if a.allow, err = newAllowList(append([]string{c.ReplyURL}, c.ReplyURLAllow...)...); err != nil {
		return nil, fmt.Errorf("webhook: reply_url_allow: %w", err)
	}
	a.transport = http.DefaultTransport.(*http.Transport).Clone()
	// Up to dispatch.max_concurrent_turns replies go to one reply host at
	// once; fewer idle connections than that means a new dial (and TLS
	// handshake) for most of them under load.
	a.transport.MaxIdleConnsPerHost = 64
	// After a burst, idle connections (two goroutines and two buffers
	// each) go after 30 s rather than the default 90 s.
	a.transport.IdleConnTimeout = 30 * time.Second
	a.client = &http.Client{
		Transport: a.transport,
		// A redirect would send a signed reply to an address nobody
		// allowed; 3xx is reported as a permanent failure instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	a.life.OnStop(func(context.Context, error) { a.transport.CloseIdleConnections() })
	return a, nil
}

// Path returns the URL path of the inbound route.
func (a *Adapter) Path() string { return a.path }

// Routes returns the inbound route, "POST <path>" (adapter.RouteProvider).
func (a *Adapter) Routes() []adapter.Route {
	return []adapter.Route{{Pattern: http.MethodPost + " " + a.path, Handler: a}}
}

// MaxMessageLen returns max_message_len (adapter.Limiter).
func (a *Adapter) MaxMessageLen() int { return a.cfg.MaxMessageLen }

// Start opens intake: from now on the route stores messages into inbox. It
// starts no goroutine; the route is live as soon as it returns, so it
// reports PhaseConnected at once. An adapter is started at most once.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	if err := a.life.Start(ctx, inbox, nil); err != nil {
		return err
	}
	if a.cfg.InsecureNoSignature {
		a.log.Warn("webhook: inbound signatures are NOT verified (insecure_no_signature: true): anyone who can reach the listener can talk to the agent")
	}
	switch {
	case a.replyURL == nil && len(a.allow) == 0:
		a.log.Info("webhook: no reply_url or reply_url_allow configured: replies reach only senders that wait for them (POST ...?wait=10s); others fail with \"no reply_url\"")
	case a.outKey == nil:
		a.log.Warn("webhook: replies are sent unsigned (no outbound_secret)")
	}
	a.live.Store(&liveInbox{inbox: inbox})
	if a.life.Stopping() {
		// A Stop that ran meanwhile may have closed intake before it was
		// open: close it again (Stop marks stopping before it closes).
		a.live.Store(nil)
		return nil
	}
	a.log.WithField("path", a.path).Info("webhook: route live")
	a.life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	return nil
}

// Stop closes intake (the route answers 503 from now on) and idle outbound
// connections. It holds no connection of its own, so it returns at once;
// Sends in flight end with their own contexts and close their connections
// when they do.
func (a *Adapter) Stop(ctx context.Context) error {
	return a.life.Stop(ctx, func(context.Context) { a.live.Store(nil) })
}

// Interface guards
var (
	_ adapter.Adapter       = (*Adapter)(nil)
	_ adapter.RouteProvider = (*Adapter)(nil)
	_ adapter.Limiter       = (*Adapter)(nil)
	_ http.Handler          = (*Adapter)(nil)
)
