// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// userAgent is sent with the bootstrap, the handshake and REST calls.
const userAgent = "herald-feishu/1 (+https://github.com/heraldgw/herald)"

// timing holds the intervals that are not configuration keys: protocol
// constants and herald's own bounds. Tests shorten them.
type timing struct {
	// defaults is the connection policy used until the platform sends its
	// own ClientConfig (the SDK's defaults).
	defaults clientConfig
	// backoffBase is the first step of the exponential backoff after the
	// random first retry.
	backoffBase time.Duration
	// readGrace is added to 2×PingInterval to form the read deadline.
	readGrace time.Duration
	// closeWait bounds the close handshake at Stop (also bounded by Stop's
	// context).
	closeWait time.Duration
	// writeTimeout bounds one websocket write (ping, ack).
	writeTimeout time.Duration
	// deliverTimeout bounds Inbox.Deliver; past it the event is not acked
	// and the platform redelivers it.
	deliverTimeout time.Duration
	// botInfoTimeout bounds the lookup of the bot's open_id on the intake
	// path; botInfoRetry spaces failed lookups.
	botInfoTimeout time.Duration
	botInfoRetry   time.Duration
}

var defaultTiming = timing{
	defaults: clientConfig{
		reconnectCount:    -1,
		reconnectInterval: 120 * time.Second,
		reconnectNonce:    30 * time.Second,
		pingInterval:      120 * time.Second,
	},
	backoffBase:    time.Second,
	readGrace:      5 * time.Second,
	closeWait:      2 * time.Second,
	writeTimeout:   10 * time.Second,
	deliverTimeout: 15 * time.Second,
	botInfoTimeout: 2 * time.Second,
	botInfoRetry:   30 * time.Second,
}

// Adapter is a Feishu/Lark platform instance: a long-connection client for
// intake and a REST client for replies.
type Adapter struct {
	name    string
	conf    *Config
	appID   string
	secret  secret.Value
	log     *logrus.Entry
	metrics adapter.Metrics
	timing  timing
	tr      *http.Transport // bootstrap and REST; websocket dials get their own
	rest    *restClient

	cfgMu sync.Mutex
	cc    clientConfig // the platform's latest ClientConfig

	bot botIdentity

	life *adapter.Life
	mu   sync.Mutex
	cur  *session // the open connection, if any
}

// New builds an adapter: it validates c and reads the app secret. It does no
// network I/O and starts no goroutine.
func New(c *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare("feishu", c, env)
	if err != nil {
		return nil, err
	}
	sec, err := c.AppSecret.Read()
	if err != nil {
		return nil, fmt.Errorf("feishu: app_secret: %w", err)
	}
	a := &Adapter{
		name:    env.Name,
		conf:    c,
		appID:   c.AppID,
		secret:  sec,
		log:     env.Log,
		life:    adapter.NewLife("feishu", env.Report),
		metrics: env.Metrics,
		timing:  defaultTiming,
	}
	a.cc = a.timing.defaults
	a.tr = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: c.RequestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.RequestTimeout,
		ExpectContinueTimeout: time.Second,
	}
	a.life.OnStop(func(context.Context, error) { a.tr.CloseIdleConnections() })
	a.rest = &restClient{
		base:    c.baseURL(),
		appID:   c.AppID,
		secret:  sec,
		hc:      &http.Client{Transport: a.tr},
		timeout: c.RequestTimeout,
		now:     time.Now,
		sem:     make(chan struct{}, 1),
		log:     a.log,
	}
	return a, nil
}

// MaxMessageLen implements adapter.Limiter.
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the long-connection client and returns at once. Connection
// failures are retried in the background; see README.md for the policy.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	return a.life.Start(ctx, inbox, func(_, hard context.Context) { a.run(hard, inbox) })
}

// Stop sends a close frame on the open connection, waits for the platform's
// answer at most 2 s (and never past ctx), then tears everything down. It
// returns within 100 ms of ctx ending in every state.
func (a *Adapter) Stop(ctx context.Context) error {
	return a.life.Stop(ctx, func(ctx context.Context) {
		a.mu.Lock()
		sess := a.cur
		a.mu.Unlock()
		if sess != nil {
			sess.closeGracefully(ctx, a.timing.closeWait)
		}
	})
}

// isStopping reports whether Stop has been called.
func (a *Adapter) isStopping() bool { return a.life.Stopping() }

// publish makes sess the connection Stop closes. It fails once Stop has
// begun.
func (a *Adapter) publish(sess *session) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.life.Stopping() {
		return false
	}
	a.cur = sess
	return true
}

func (a *Adapter) unpublish(sess *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == sess {
		a.cur = nil
	}
}

// Interface guards.
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
	_ adapter.Editor  = (*Adapter)(nil)
)
