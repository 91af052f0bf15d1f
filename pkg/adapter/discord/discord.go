// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// tunables are the timings of the gateway client. Tests shorten them.
type tunables struct {
	// backoffBase and backoffMax bound the jittered exponential backoff
	// between connection attempts.
	backoffBase, backoffMax time.Duration
	// invalidMin..invalidMax is the wait after Invalid Session (op 9);
	// Discord asks for 1–5 s.
	invalidMin, invalidMax time.Duration
	// closeBound bounds a close handshake (Stop, zombie, redelivery).
	closeBound time.Duration
	// closeGrace is what Stop still gives a close frame on its way out when
	// its context has already ended (well within the 100 ms contract).
	closeGrace time.Duration
	// cmdLimit commands per cmdWindow (Discord: 120 per 60 s).
	cmdLimit  int
	cmdWindow time.Duration
	// jitter returns the fraction of the heartbeat interval to wait before
	// the first heartbeat, in [0,1).
	jitter func() float64
	// saveInterval: while connected, the saved session is rewritten this
	// often if the sequence number advanced (not per event: an fsync per
	// event would bound intake by the disk). A SIGKILL loses at most this
	// much progress, which Discord replays and the store deduplicates.
	saveInterval time.Duration
	// refreshInterval: while connected, the saved session is rewritten at
	// least this often even without events, so that its saved_at stays
	// close to the moment the connection ended (a crash of a quiet bot).
	refreshInterval time.Duration
}

func defaultTunables() tunables {
	return tunables{
		backoffBase: time.Second,
		backoffMax:  2 * time.Minute,
		invalidMin:  time.Second,
		invalidMax:  5 * time.Second,
		closeBound:  2 * time.Second,
		closeGrace:  25 * time.Millisecond,
		cmdLimit:    120,
		cmdWindow:   time.Minute,
		jitter:      rand.Float64,

		saveInterval:    2 * time.Second,
		refreshInterval: 30 * time.Second,
	}
}

// Adapter is a Discord bot connected through the gateway.
type Adapter struct {
	adapter.Base
	cfg   Config
	token secret.Value
	rest  *restClient
	// wsTransport dials gateway connections only, so that each dial opens a
	// fresh TCP connection whose net.Conn the adapter can close by force.
	wsTransport *http.Transport
	wsClient    *http.Client
	tun         tunables

	// Session state, owned by the run goroutine: only it writes these
	// fields, under persistMu for sessionID, resumeURL and botID, which the
	// saver and the stop watcher read under persistMu. seq is also read by
	// the heartbeat goroutine.
	inbox     adapter.Inbox
	sessionID string
	resumeURL string
	botID     string
	seq       atomic.Int64
	threads   map[string]struct{}
	// resumeDialFails counts failed dials of resume_gateway_url in a row.
	resumeDialFails int

	// Persistence of the session across restarts (state.go). state.states
	// keeps nothing when disabled (no States, or resume_window 0).
	// persistMu orders every save and removal with session changes, so
	// that a dropped session is never written back by a concurrent save.
	state     stateFile
	tokenFP   string
	persistMu sync.Mutex
	saved     savedMark // what the file holds
	saves     adapter.SaveStreak
}

// New builds a Discord adapter; it reads the token but does no network I/O.
func New(cfg *Config, env adapter.Env) (*Adapter, error) {
	env, err := adapter.Prepare(TypeName, cfg, env)
	if err != nil {
		return nil, err
	}
	tok, err := cfg.Token.Read()
	if err != nil {
		return nil, fmt.Errorf("discord: token: %w", err)
	}
	if strings.HasPrefix(tok.Reveal(), "Bot ") {
		return nil, fmt.Errorf("discord: token: %s holds \"Bot <token>\": store the bare token, herald adds the prefix", cfg.Token)
	}
	log := env.Log
	if cfg.Intents&IntentMessageContent == 0 {
		log.Warn("discord: intents lack MESSAGE_CONTENT (32768): guild messages that do not mention the bot arrive without text")
	}
	st := stateFile{states: env.States}
	if cfg.ResumeWindow == 0 {
		st.states = nil
	}
	wsTr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           recordingDialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}),
		TLSHandshakeTimeout:   cfg.RequestTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		MaxIdleConns:          1,
		IdleConnTimeout:       time.Second,
	}
	a := &Adapter{
		Base:        adapter.NewBase(TypeName, env),
		cfg:         *cfg,
		token:       tok,
		rest:        newRESTClient(cfg.APIURL, tok, cfg.RequestTimeout, log),
		wsTransport: wsTr,
		wsClient:    &http.Client{Transport: wsTr},
		tun:         defaultTunables(),
		threads:     map[string]struct{}{},
		state:       st,
		tokenFP:     tokenFingerprint(tok.Reveal()),
	}
	a.Life.OnStop(func(context.Context, error) {
		a.rest.tr.CloseIdleConnections()
		a.wsTransport.CloseIdleConnections()
	})
	return a, nil
}

// MaxMessageLen is max_message_len (2000 by default, Discord's limit).
func (a *Adapter) MaxMessageLen() int { return a.cfg.MaxMessageLen }

// Start launches the gateway client and returns at once. Connection
// failures are retried in the background; see Status reports.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	a.Life.CloseBound, a.Life.Grace = a.tun.closeBound, a.tun.closeGrace
	return a.Life.Start(ctx, inbox, func(soft, hard context.Context) {
		a.inbox = inbox
		a.run(soft, hard)
	})
}

// Stop saves the session, closes the gateway connection and returns within
// 100 ms of ctx ending.
//
// With a state directory the connection is closed with 4000, which keeps
// the session resumable, after the session was written to disk: the next
// herald process resumes it and Discord replays what was sent in between.
// Without one it closes with 1000, which ends the session (nobody could
// resume it). The close handshake waits at most 2 s (and never past ctx);
// then the TCP connection is closed by force. An event still being stored
// when the bound runs out gets its context cancelled; it is not counted as
// handled, so a resume replays it. See the README on what is guaranteed.
func (a *Adapter) Stop(ctx context.Context) error { return a.Life.Stop(ctx, nil) }

func (a *Adapter) invalidSessionDelay() time.Duration {
	lo, hi := a.tun.invalidMin, a.tun.invalidMax
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo)
}

// Interface guards
var (
	_ adapter.Adapter = (*Adapter)(nil)
	_ adapter.Editor  = (*Adapter)(nil)
	_ adapter.Typer   = (*Adapter)(nil)
	_ adapter.Limiter = (*Adapter)(nil)
)
