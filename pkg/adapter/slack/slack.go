// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/secret"
)

// TypeName is the platform type registered with the adapter registry.
const TypeName = "slack"

func init() {
	adapter.Register(adapter.Type{
		Name:      TypeName,
		NewConfig: func() any { return NewConfig() },
		New:       New,
	})
}

// Timings that are not configuration keys. Tests shorten them.
const (
	defaultBackoffMin = time.Second
	defaultBackoffMax = 5 * time.Minute
	// defaultCloseWait bounds the wait for Slack's answer to a close frame.
	defaultCloseWait = 2 * time.Second
	// defaultStableAfter: a connection that lived this long before it
	// dropped resets the backoff, so a routine drop reconnects at once.
	defaultStableAfter = time.Minute
	// stopGrace is how long Stop waits, after its context ended, for the
	// goroutines it has already told to end (they need microseconds).
	stopGrace = 50 * time.Millisecond
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
	report   func(adapter.Status)
	metrics  adapter.Metrics
	conf     Config
	appToken secret.Value
	botToken secret.Value
	api      *webAPI
	mapper   mapper

	// Tunables, fixed after New; tests change them before Start.
	backoffMin  time.Duration
	backoffMax  time.Duration
	closeWait   time.Duration
	stableAfter time.Duration

	mu      sync.Mutex
	started bool
	stopped bool

	// Set by Start.
	inbox        adapter.Inbox
	runCtx       context.Context // ends every goroutine and connection
	runCancel    context.CancelFunc
	intakeCtx    context.Context // ends storing and acknowledging
	intakeCancel context.CancelFunc
	intake       chan intakeItem
	wg           sync.WaitGroup
	allDone      chan struct{} // closed when wg reaches zero after Start
	supDone      chan struct{} // closed when the supervisor returns
	stopReq      chan struct{} // closed by Stop
	stopCtx      context.Context
}

// New builds a Slack adapter from a *Config. It reads both tokens; it does
// no network I/O.
func New(conf any, env adapter.Env) (adapter.Adapter, error) {
	c, ok := conf.(*Config)
	if !ok || c == nil {
		return nil, fmt.Errorf("slack: configuration is %T, want *slack.Config", conf)
	}
	return newAdapter(*c, env)
}

func newAdapter(c Config, env adapter.Env) (*Adapter, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
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
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	if !strings.HasPrefix(bot.Reveal(), "xoxb-") {
		log.Warn("slack: bot_token does not start with xoxb-: replies are posted as whoever owns the token")
	}
	report := env.Report
	if report == nil {
		report = func(adapter.Status) {}
	}
	metrics := env.Metrics
	if metrics == nil {
		metrics = adapter.NopMetrics{}
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: c.RequestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.RequestTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &Adapter{
		name:        env.Name,
		log:         log,
		report:      report,
		metrics:     metrics,
		conf:        c,
		appToken:    app,
		botToken:    bot,
		api:         &webAPI{base: strings.TrimRight(c.APIURL, "/"), client: &http.Client{Transport: tr}, log: log},
		mapper:      mapper{platform: env.Name, replyInThread: c.ReplyInThread},
		backoffMin:  defaultBackoffMin,
		backoffMax:  defaultBackoffMax,
		closeWait:   defaultCloseWait,
		stableAfter: defaultStableAfter,
	}, nil
}

// Name returns the instance name.
func (a *Adapter) Name() string { return a.name }

// MaxMessageLen is max_message_len (default 39000 characters).
func (a *Adapter) MaxMessageLen() int { return a.conf.MaxMessageLen }

// Start launches the Socket Mode intake and returns at once. Connection
// failures are retried in the background; bad credentials end in
// PhaseFatal. When ctx ends, intake stops as if Stop had been called with a
// two-second budget.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	if inbox == nil {
		return errors.New("slack: start: nil inbox")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.stopped:
		return errors.New("slack: start: adapter already stopped")
	case a.started:
		return errors.New("slack: start: already started")
	}
	a.started = true
	a.inbox = inbox
	// Connections outlive a cancelled ctx by the close handshake, so they
	// hang off their own context; the supervisor watches ctx.
	a.runCtx, a.runCancel = context.WithCancel(context.WithoutCancel(ctx))
	a.intakeCtx, a.intakeCancel = context.WithCancel(a.runCtx)
	a.intake = make(chan intakeItem, intakeQueue)
	a.allDone = make(chan struct{})
	a.supDone = make(chan struct{})
	a.stopReq = make(chan struct{})
	a.report(adapter.Status{Phase: adapter.PhaseStarting})
	a.wg.Add(2)
	go a.supervise(ctx)
	go a.work()
	go func() {
		a.wg.Wait()
		close(a.allDone)
	}()
	return nil
}

// Stop stops intake (nothing new is stored or acknowledged), sends a close
// frame on every connection and waits for Slack's answer at most two
// seconds and never past ctx, then drops the connections. It returns
// within 100 ms of ctx ending and leaves no goroutine behind.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	started := a.started
	a.mu.Unlock()

	var err error
	if started {
		a.intakeCancel()
		a.stopCtx = ctx
		close(a.stopReq)
		select {
		case <-a.supDone:
		case <-ctx.Done():
		}
		a.runCancel()
		select {
		case <-a.allDone:
		case <-ctx.Done():
			t := time.NewTimer(stopGrace)
			select {
			case <-a.allDone:
			case <-t.C:
				err = errors.New("slack: stop: goroutines still running after the context ended")
			}
			t.Stop()
		}
	}
	a.api.client.CloseIdleConnections()
	a.report(adapter.Status{Phase: adapter.PhaseStopped})
	return err
}

// postMessage is the body of chat.postMessage and chat.update.
type postMessage struct {
	Channel  string `json:"channel"`
	Text     string `json:"text"`
	ThreadTS string `json:"thread_ts,omitempty"`
	TS       string `json:"ts,omitempty"`
	// Metadata tags a reply with herald's idempotency key (see Recover).
	Metadata *metadata `json:"metadata,omitempty"`
}

// Send posts msg with chat.postMessage and returns its ts. See threadTS for
// where the reply goes. chat.postMessage has no idempotency key: a timeout
// after the request was sent is ErrAmbiguous, which the core settles with
// Recover. The message carries msg.IdempotencyKey in its metadata.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	if msg.ChatID == "" {
		return adapter.SendResult{}, fmt.Errorf("slack: chat.postMessage: %w: no chat id", adapter.ErrPermanent)
	}
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	res, err := a.api.call(ctx, "chat.postMessage", a.botToken, postMessage{
		Channel:  msg.ChatID,
		Text:     escape(msg.Text),
		ThreadTS: a.threadTS(msg),
		Metadata: replyMetadata(msg.IdempotencyKey),
	})
	if err != nil {
		return adapter.SendResult{}, err
	}
	return adapter.SendResult{MessageID: res.TS}, nil
}

// Edit replaces the text of a message sent by Send (messageID is its ts)
// with chat.update. Unlike Send it is idempotent, so a timeout after the
// request was sent is ErrTemporary, not ErrAmbiguous.
func (a *Adapter) Edit(ctx context.Context, msg *message.Outbound, messageID string) error {
	if msg.ChatID == "" || messageID == "" {
		return fmt.Errorf("slack: chat.update: %w: chat id and message ts are required", adapter.ErrPermanent)
	}
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	_, err := a.api.call(ctx, "chat.update", a.botToken, postMessage{
		Channel: msg.ChatID,
		Text:    escape(msg.Text),
		TS:      messageID,
	})
	if errors.Is(err, adapter.ErrAmbiguous) {
		// Setting the same text twice shows nothing twice: a lost answer
		// is simply worth a retry.
		return fmt.Errorf("slack: chat.update: %w: %v", adapter.ErrTemporary, err)
	}
	return err
}

// threadTS decides where a reply goes: into the thread the message came
// from (Outbound.ThreadID), else with reply_in_thread into a new thread
// under the message answered (ReplyTo) unless the chat is a direct
// message, else to the channel itself.
func (a *Adapter) threadTS(msg *message.Outbound) string {
	if msg.ThreadID != "" {
		return msg.ThreadID
	}
	ct := msg.ChatType
	if ct == "" {
		ct = chatType("", msg.ChatID)
	}
	if a.conf.ReplyInThread && ct != message.ChatDirect && msg.ReplyTo != "" {
		return msg.ReplyTo
	}
	return ""
}

// Interface guards.
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Editor  = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
)
