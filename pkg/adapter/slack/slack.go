// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// Timings that are not configuration keys. Tests shorten them.
const (
	defaultBackoffMin = time.Second
	defaultBackoffMax = 5 * time.Minute
	// defaultCloseWait bounds the wait for Slack's answer to a close frame.
	defaultCloseWait = 2 * time.Second
	// defaultStableAfter: a connection that lived this long before it
	// dropped resets the backoff, so a routine drop reconnects at once.
	defaultStableAfter = time.Minute
	// readLimit bounds one websocket message (coder/websocket's default is
	// 32 KiB).
	readLimit = 1 << 20
	// intakeQueue is how many envelopes may wait for the store; a full
	// queue stops reading, which Slack answers by redelivering.
	intakeQueue = 16
)

// Adapter is a Slack Socket Mode adapter. Create it with New.
type Adapter struct {
	name     string
	log      *logrus.Entry
	metrics  adapter.Metrics
	conf     Config
	appToken secret.Value
	botToken secret.Value
	api      *webAPI
	files    *http.Client // file downloads (see FetchMedia)
	mapper   mapper

	// Tunables, fixed after New; tests change them before Start.
	backoff     adapter.Backoff
	closeWait   time.Duration
	stableAfter time.Duration

	life *adapter.Life

	// open counts herald's Socket Mode connections from the websocket
	// handshake until their reader returns, so that a connection being
	// closed still counts (Slack may count it too).
	open atomic.Int64

	// Set by Start, before the supervisor runs.
	inbox        adapter.Inbox
	runCtx       context.Context // ends every goroutine and connection
	intakeCtx    context.Context // ends storing and acknowledging
	intakeCancel context.CancelFunc
	intake       chan intakeItem
}

// New builds a Slack adapter. It reads both tokens; it does no network
// I/O.
func New(conf *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, conf, env)
	if err != nil {
		return nil, err
	}
	c := *conf
	app, err := c.AppToken.Read()
	if err != nil {
		return nil, fmt.Errorf("slack: app_token: %w", err)
	}
	if !strings.HasPrefix(app.Reveal(), "xapp-") {
		return nil, errors.New("slack: app_token: not an app-level token (xapp-…): create one with scope connections:write under Basic Information → App-Level Tokens")
	}
	bot, err := c.BotToken.Read()
	if err != nil {
		return nil, fmt.Errorf("slack: bot_token: %w", err)
	}
	if strings.HasPrefix(bot.Reveal(), "xapp-") {
		return nil, errors.New("slack: bot_token: this is an app-level token; use the Bot User OAuth Token (xoxb-…)")
	}
	log := env.Log
	if !strings.HasPrefix(bot.Reveal(), "xoxb-") {
		log.Warn("slack: bot_token does not start with xoxb-: replies are posted as whoever owns the token")
	}
	metrics := env.Metrics
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: c.RequestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.RequestTimeout,
		ExpectContinueTimeout: time.Second,
	}
	a := &Adapter{
		name:        env.Name,
		log:         log,
		metrics:     metrics,
		life:        adapter.NewLife(TypeName, env.Report),
		conf:        c,
		appToken:    app,
		botToken:    bot,
		api:         &webAPI{base: strings.TrimRight(c.APIURL, "/"), client: &http.Client{Transport: tr}, log: log},
		files:       &http.Client{Transport: tr, CheckRedirect: sameHostRedirects},
		mapper:      mapper{platform: env.Name, replyInThread: c.ReplyInThread},
		backoff:     adapter.Backoff{Min: defaultBackoffMin, Max: defaultBackoffMax},
		closeWait:   defaultCloseWait,
		stableAfter: defaultStableAfter,
	}
	// Connections outlive a cancelled Start context by the close
	// handshake, so they hang off their own context; the supervisor
	// watches Start's context.
	a.life.Detached = true
	a.life.OnStop(func(context.Context, error) { a.api.client.CloseIdleConnections() })
	return a, nil
}

// MaxMessageLen is max_message_len (default 39000 characters).
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the Socket Mode intake and returns at once. Connection
// failures are retried in the background; bad credentials end in
// PhaseFatal. When ctx ends, intake stops as if Stop had been called with a
// two-second budget.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	// The supervisor's close handshakes are bounded by closeWait; this
	// only guards against one that is not.
	a.life.CloseBound = 2 * a.closeWait
	return a.life.Start(ctx, inbox, func(soft, hard context.Context) {
		a.inbox = inbox
		a.runCtx = hard
		a.intakeCtx, a.intakeCancel = context.WithCancel(hard)
		a.intake = make(chan intakeItem, intakeQueue)
		a.life.Go(a.work)
		a.supervise(ctx, soft)
	})
}

// Stop stops intake (nothing new is stored or acknowledged), sends a close
// frame on every connection and waits for Slack's answer at most two
// seconds and never past ctx, then drops the connections. It returns
// within 100 ms of ctx ending and leaves no goroutine behind.
func (a *Adapter) Stop(ctx context.Context) error { return a.life.Stop(ctx, nil) }

// Interface guards.
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Editor  = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
)
