// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook/internal/signature"
)

// TypeName is the adapter type name (platforms.<name>.type).
const TypeName = "webhook"

// MetaReplyURL is the message.Inbound.Meta key (copied to Outbound.Meta)
// holding the per-message reply URL given by the sender.
const MetaReplyURL = "reply_url"

func init() {
	adapter.Register(adapter.Type{
		Name:      TypeName,
		NewConfig: func() any { return NewConfig() },
		New: func(conf any, env adapter.Env) (adapter.Adapter, error) {
			c, ok := conf.(*Config)
			if !ok {
				return nil, fmt.Errorf("webhook: configuration is %T, want *webhook.Config", conf)
			}
			return New(c, env)
		},
		// Requests on herald.socket start herald.
		Passive: true,
	})
}

// Adapter is one webhook platform instance. It is an http.Handler for its
// inbound route (also returned by Routes).
type Adapter struct {
	name    string
	cfg     Config
	path    string
	log     *logrus.Entry
	report  func(adapter.Status)
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

	mu      sync.Mutex // serialises Start and Stop
	started bool
	stopped atomic.Bool
	// live holds the inbox while intake is open: nil before Start and after
	// Stop, which is what makes the handler answer 503.
	live atomic.Pointer[liveInbox]

	warn    logLimiter
	waiters waiters
}

type liveInbox struct{ inbox adapter.Inbox }

// New builds an adapter from a decoded configuration. It validates c and
// reads the secrets; it does no network I/O and starts no goroutine.
func New(c *Config, env adapter.Env) (*Adapter, error) {
	if c == nil {
		return nil, errors.New("webhook: nil configuration")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	a := &Adapter{
		name:    env.Name,
		cfg:     *c,
		log:     env.Log,
		report:  env.Report,
		metrics: env.Metrics,
		now:     time.Now,

		waitTimer: newWaitTimer,
	}
	a.cfg.ReplyURLAllow = append([]string(nil), c.ReplyURLAllow...)
	if a.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		a.log = logrus.NewEntry(l)
	}
	if a.report == nil {
		a.report = func(adapter.Status) {}
	}
	if a.metrics == nil {
		a.metrics = adapter.NopMetrics{}
	}
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
	var err error
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
	return a, nil
}

// Name returns the instance name.
func (a *Adapter) Name() string { return a.name }

// Path returns the URL path of the inbound route.
func (a *Adapter) Path() string { return a.path }

// Routes returns the inbound route, "POST <path>" (adapter.RouteProvider).
func (a *Adapter) Routes() []adapter.Route {
	return []adapter.Route{{Pattern: http.MethodPost + " " + a.path, Handler: a}}
}

// DeduplicatesSends reports that replies carry Idempotency-Key and
// webhook-id, stable across retries (adapter.Deduplicator): a receiver
// following Standard Webhooks drops a retried reply it already has.
func (a *Adapter) DeduplicatesSends() bool { return true }

// MaxMessageLen returns max_message_len (adapter.Limiter).
func (a *Adapter) MaxMessageLen() int { return a.cfg.MaxMessageLen }

// Start opens intake: from now on the route stores messages into inbox. It
// starts no goroutine; the route is live as soon as it returns, so it
// reports PhaseConnected at once. An adapter is started at most once.
func (a *Adapter) Start(_ context.Context, inbox adapter.Inbox) error {
	if inbox == nil {
		return errors.New("webhook: Start: nil inbox")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.stopped.Load():
		return errors.New("webhook: Start after Stop")
	case a.started:
		return errors.New("webhook: already started")
	}
	a.started = true
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
	a.log.WithField("path", a.path).Info("webhook: route live")
	a.report(adapter.Status{Phase: adapter.PhaseConnected})
	return nil
}

// Stop closes intake (the route answers 503 from now on) and idle outbound
// connections. It holds no connection of its own, so it returns at once;
// Sends in flight end with their own contexts and close their connections
// when they do.
func (a *Adapter) Stop(_ context.Context) error {
	a.mu.Lock()
	first := !a.stopped.Swap(true)
	a.live.Store(nil)
	a.mu.Unlock()
	a.transport.CloseIdleConnections()
	if first {
		a.report(adapter.Status{Phase: adapter.PhaseStopped})
	}
	return nil
}

// logLimiter lets one warning per second through, so that a flood of bad
// requests (which anyone can send) cannot flood the journal; the metrics
// still count every one.
type logLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether to log now and how many messages were suppressed
// since the last one logged.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(time.Second)
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// Interface guards
var (
	_ adapter.Adapter       = (*Adapter)(nil)
	_ adapter.RouteProvider = (*Adapter)(nil)
	_ adapter.Limiter       = (*Adapter)(nil)
	_ adapter.Deduplicator  = (*Adapter)(nil)
	_ http.Handler          = (*Adapter)(nil)
)
