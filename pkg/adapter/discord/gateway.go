// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// maxResumeDialFails is how many failed dials of resume_gateway_url make
// the client fall back to the main gateway URL.
const maxResumeDialFails = 3

// readLimit bounds one gateway message. coder/websocket's default of 32 KiB
// is far too small: READY and GUILD_CREATE of a large guild run to
// megabytes.
const readLimit = 8 << 20

// Close codes herald sends. Discord: closing with 1000 or 1001 invalidates
// the session; "if you simply close the TCP connection or use a different
// close code, the session will remain active and timeout after a few
// minutes" (Gateway, Initiating a Disconnect). closeShutdown is used only
// when herald stops without a state directory: nobody could resume the
// session, and the bot shows offline at once. Every other close, a stop
// with a saved session included, uses 4000, the first of the
// application-defined range (RFC 6455 §7.4.2), which Discord leaves
// resumable and which herald already uses to resume after a zombie
// connection. 1012 (Service Restart) was not used: it is a server's code in
// IANA's registry and Discord documents no meaning for it.
const (
	closeShutdown  websocket.StatusCode = websocket.StatusNormalClosure
	closeReconnect websocket.StatusCode = 4000
)

var (
	errZombie     = errors.New("discord: gateway: no heartbeat ACK since the previous heartbeat (zombie connection)")
	errReconnect  = errors.New("discord: gateway: server asked to reconnect (op 7)")
	errInvalidRes = errors.New("discord: gateway: invalid session (op 9), resumable")
	errInvalidNew = errors.New("discord: gateway: invalid session (op 9), not resumable: identifying again")
)

// closeAction says what a gateway close code asks of the client.
type closeAction int

const (
	actResume closeAction = iota
	actIdentify
	actFatal
)

// closeCodes documents every Discord gateway close code
// (https://docs.discord.com/developers/topics/opcodes-and-status-codes):
// the "Resume" column decides resume or identify, "Reconnect: false" is
// fatal. The text is what Status.Err and the log show.
var closeCodes = map[websocket.StatusCode]struct {
	act  closeAction
	text string
}{
	4000: {actResume, "unknown error"},
	4001: {actIdentify, "unknown opcode"},
	4002: {actResume, "decode error"},
	4003: {actIdentify, "not authenticated"},
	4004: {actFatal, "authentication failed: the bot token is invalid (reset it in the developer portal and update the credential)"},
	4005: {actIdentify, "already authenticated"},
	4007: {actIdentify, "invalid seq"},
	4008: {actResume, "rate limited"},
	4009: {actIdentify, "session timed out"},
	4010: {actFatal, "invalid shard"},
	4011: {actFatal, "sharding required: the bot is in too many guilds for one unsharded connection, which herald does not support"},
	4012: {actFatal, "invalid API version"},
	4013: {actFatal, "invalid intents: check the intents bitfield in the configuration"},
	4014: {actFatal, "disallowed intents: enable the MESSAGE_CONTENT privileged intent (and any other privileged intent configured) for the bot in the developer portal"},
}

// CloseError is the error of a gateway connection closed by Discord with
// one of its close codes.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("discord: gateway closed with %d %s", e.Code, e.Text)
}

// Unwrap classifies fatal codes: 4004 as adapter.ErrUnauthorized, the other
// fatal ones as adapter.ErrPermanent, the rest as adapter.ErrTemporary.
func (e *CloseError) Unwrap() error {
	switch c := closeCodes[websocket.StatusCode(e.Code)]; {
	case e.Code == 4004:
		return adapter.ErrUnauthorized
	case c.act == actFatal && c.text != "":
		return adapter.ErrPermanent
	default:
		return adapter.ErrTemporary
	}
}

// classifyClose maps the close status of a read error (-1 if the
// connection ended without a close frame).
func classifyClose(code websocket.StatusCode) (closeAction, error) {
	if code < 0 {
		return actResume, nil
	}
	c, ok := closeCodes[code]
	if !ok {
		// 1000/1001 from the server, 1006, 1011 …: try to resume; Discord
		// answers op 9 if the session is gone.
		return actResume, &CloseError{Code: int(code), Text: "(" + code.String() + ")"}
	}
	return c.act, &CloseError{Code: int(code), Text: c.text}
}

// outcome is how one connection attempt ended.
type outcome struct {
	err   error // why (for Status and the log)
	fatal bool  // never retry
	// healthy: the connection reached READY or RESUMED and did not end
	// because the inbox failed; the backoff starts over.
	healthy bool
	// immediate: reconnect without backoff (op 7, zombie after a healthy
	// connection).
	immediate bool
	// delay, if > 0, replaces the backoff (op 9, session start limit,
	// rate-limited gateway lookup).
	delay time.Duration
}

// run is the session owner: connect, read, reconnect, until stopCtx ends or
// a fatal error.
func (a *Adapter) run(stopCtx, hardCtx context.Context) {
	a.restoreSession()
	rc := adapter.Reconnect{
		Life:    a.Life,
		Log:     a.Log,
		Metrics: a.Metrics,
		Backoff: adapter.Backoff{Min: a.tun.backoffBase, Max: a.tun.backoffMax},
	}
	rc.Run(stopCtx, func(context.Context) adapter.Attempt {
		out := a.connect(stopCtx, hardCtx)
		return adapter.Attempt{Err: out.err, Fatal: out.fatal, Healthy: out.healthy, Immediate: out.immediate, Delay: out.delay}
	})
}

// advance records that the event with sequence number s was handled.
func (a *Adapter) advance(s int64) {
	if s > a.seq.Load() {
		a.seq.Store(s)
	}
}

// connect runs one gateway connection from lookup to close.
func (a *Adapter) connect(stopCtx, hardCtx context.Context) outcome {
	resume := a.sessionID != ""
	base := a.resumeURL
	if !resume || base == "" {
		u, wait, err := a.rest.gatewayBot(stopCtx)
		if err != nil {
			if isFatal(err) {
				return outcome{err: err, fatal: true}
			}
			d, _ := adapter.RetryAfter(err)
			return outcome{err: err, delay: d}
		}
		if wait > 0 && !resume {
			return outcome{err: fmt.Errorf("discord: gateway: daily session start limit reached, next Identify in %v", wait), delay: wait}
		}
		base = u
	}
	wsURL := strings.TrimRight(base, "/") + "/?v=10&encoding=json"

	box := &connBox{}
	dialCtx, cancel := context.WithTimeout(stopCtx, a.cfg.RequestTimeout)
	dialCtx = context.WithValue(dialCtx, connBoxKey{}, box)
	ws, _, err := websocket.Dial(dialCtx, wsURL, &websocket.DialOptions{
		HTTPClient: a.wsClient,
		HTTPHeader: http.Header{"User-Agent": {userAgent}},
	})
	cancel()
	if err != nil {
		box.close()
		a.wsTransport.CloseIdleConnections()
		if base == a.resumeURL {
			// A resume host that cannot be reached: after a few tries,
			// resume through the main gateway instead (Discord answers op 9
			// if it will not resume there).
			if a.resumeDialFails++; a.resumeDialFails >= maxResumeDialFails {
				a.Log.WithField("resume_gateway_url", a.resumeURL).Warn("discord: resume gateway unreachable, using the main gateway")
				a.setResumeURL("")
				a.resumeDialFails = 0
			}
		}
		return outcome{err: fmt.Errorf("discord: gateway: dial: %w", err)}
	}
	a.resumeDialFails = 0
	ws.SetReadLimit(readLimit)
	c := &gwConn{ws: ws, raw: box, lim: newCmdLimiter(a.tun.cmdLimit, a.tun.cmdWindow), timeout: a.cfg.RequestTimeout}
	c.acked.Store(true)

	connCtx, connCancel := context.WithCancel(hardCtx)
	var wg sync.WaitGroup
	defer func() {
		if stopCtx.Err() != nil {
			a.closeStopping(c, hardCtx.Done())
		} else {
			c.close(closeReconnect, "reconnecting", a.tun.closeBound, hardCtx.Done())
		}
		connCancel()
		wg.Wait()
		box.close()
		if c.live.Load() {
			// Events handled while the connection ended (after the last
			// periodic save) count too.
			a.saveSession(false)
		}
	}()
	// The watcher performs the graceful close when Stop is called, whatever
	// the reader is doing (waiting for Hello, READY, or the inbox).
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-stopCtx.Done():
			a.closeStopping(c, hardCtx.Done())
		case <-connCtx.Done():
		}
	}()
	if a.persisting() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.saveLoop(connCtx, c)
		}()
	}

	helloCtx, cancel := context.WithTimeout(connCtx, a.cfg.RequestTimeout)
	_, data, err := ws.Read(helloCtx)
	cancel()
	if err != nil {
		return a.readFailed(c, fmt.Errorf("discord: gateway: waiting for Hello: %w", err), false)
	}
	p, err := parsePayload(data)
	if err != nil {
		return outcome{err: fmt.Errorf("discord: gateway: bad Hello: %w", err)}
	}
	interval, err := parseHello(p)
	if err != nil {
		return outcome{err: fmt.Errorf("discord: gateway: %w", err)}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.heartbeat(connCtx, c, interval, hardCtx.Done())
	}()

	if resume {
		err = c.send(connCtx, resumeFrame(a.token.Reveal(), a.sessionID, a.seq.Load()))
	} else {
		err = c.send(connCtx, identifyFrame(a.token.Reveal(), a.cfg.Intents))
	}
	if err != nil {
		return a.readFailed(c, fmt.Errorf("discord: gateway: sending %s: %w", map[bool]string{true: "Resume", false: "Identify"}[resume], err), false)
	}
	a.Log.WithField("resume", resume).Debug("discord: gateway connected, session requested")
	return a.readLoop(connCtx, c)
}

// closeStopping closes c because herald stops. With a state directory it
// first saves the session (if the connection is up), then closes with a
// code that keeps the session resumable for the next process; without one
// it closes with 1000. Any goroutine; only the first call saves.
func (a *Adapter) closeStopping(c *gwConn, hard <-chan struct{}) {
	code, reason := closeShutdown, "herald stopping"
	if a.persisting() {
		c.stopOnce.Do(func() {
			if c.live.Load() {
				a.saveSession(true)
			}
		})
		if a.hasSession() {
			code, reason = closeReconnect, "herald restarting, will resume"
		}
	}
	c.close(code, reason, a.tun.closeBound, hard)
}

// saveLoop saves the session every saveInterval while c is up, when the
// sequence number advanced (or refreshInterval passed).
func (a *Adapter) saveLoop(ctx context.Context, c *gwConn) {
	t := time.NewTicker(a.tun.saveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.live.Load() {
			a.saveSession(false)
		}
	}
}

// readLoop reads and handles frames until the connection ends.
func (a *Adapter) readLoop(ctx context.Context, c *gwConn) outcome {
	healthy := false
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return a.readFailed(c, fmt.Errorf("discord: gateway: read: %w", err), healthy)
		}
		p, err := parsePayload(data)
		if err != nil {
			a.Metrics.Rejected("malformed")
			a.Log.WithError(err).Warn("discord: gateway: ignoring malformed frame")
			continue
		}
		switch p.Op {
		case opDispatch:
			out, done := a.dispatch(ctx, p, &healthy)
			if healthy {
				c.live.Store(true)
			}
			if done {
				return out
			}
		case opHeartbeat:
			// The server wants a heartbeat now; this one does not count
			// for ACK tracking.
			if err := c.send(ctx, heartbeatFrame(a.seq.Load())); err != nil {
				return a.readFailed(c, fmt.Errorf("discord: gateway: heartbeat: %w", err), healthy)
			}
		case opHeartbeatACK:
			c.acked.Store(true)
		case opReconnect:
			return outcome{err: errReconnect, healthy: healthy, immediate: true}
		case opInvalidSession:
			if parseInvalidSession(p.D) {
				return outcome{err: errInvalidRes, healthy: healthy, delay: a.invalidSessionDelay()}
			}
			a.dropSession()
			return outcome{err: errInvalidNew, healthy: healthy, delay: a.invalidSessionDelay()}
		case opHello:
		default:
			a.Log.WithField("op", p.Op).Debug("discord: gateway: ignoring unknown opcode")
		}
	}
}

// readFailed classifies the end of a connection.
func (a *Adapter) readFailed(c *gwConn, err error, healthy bool) outcome {
	if c.zombie.Load() {
		return outcome{err: errZombie, healthy: healthy, immediate: true}
	}
	act, cerr := classifyClose(websocket.CloseStatus(err))
	if cerr != nil {
		err = cerr
	}
	switch act {
	case actFatal:
		// The token or configuration is refused: a saved session is of
		// no use to the next process either.
		a.dropSession()
		return outcome{err: err, fatal: true}
	case actIdentify:
		a.dropSession()
	}
	return outcome{err: err, healthy: healthy}
}

// dispatch handles op 0. done means the connection must end with out.
func (a *Adapter) dispatch(ctx context.Context, p payload, healthy *bool) (out outcome, done bool) {
	switch p.T {
	case "READY":
		r, err := parseReady(p.D)
		if err != nil {
			a.Metrics.Rejected("malformed")
			return outcome{err: fmt.Errorf("discord: gateway: %w", err)}, true
		}
		a.setSession(r.SessionID, r.ResumeGatewayURL, r.User.ID, p.S)
		*healthy = true
		// Saved at once: a crash right after READY must not lose the
		// session.
		a.saveSession(true)
		a.Log.WithFields(map[string]any{"bot_id": r.User.ID, "bot": r.User.Username}).Info("discord: connected (READY)")
		a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	case "RESUMED":
		a.advance(p.S)
		*healthy = true
		// The session is known alive again: refresh saved_at at once.
		a.saveSession(true)
		a.Log.WithField("seq", a.seq.Load()).Info("discord: session resumed")
		a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	case "MESSAGE_CREATE", "INTERACTION_CREATE":
		store := a.intake
		if p.T == "INTERACTION_CREATE" {
			store = a.interaction
		}
		if err := store(ctx, p); err != nil {
			// Not stored: do not advance, close resumably, resume from
			// the last stored sequence number so Discord replays it.
			out := outcome{err: err}
			if errors.Is(err, adapter.ErrStopping) {
				// herald is shutting down and Stop follows: no point in
				// resuming into a store that refuses everything.
				out.delay = a.tun.backoffMax
			}
			return out, true
		}
		a.advance(p.S)
	case "THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE", "GUILD_CREATE", "THREAD_LIST_SYNC":
		a.trackThreads(p)
		a.advance(p.S)
	default:
		a.advance(p.S)
	}
	return outcome{}, false
}

// intake hands one MESSAGE_CREATE to the inbox. It returns an error only
// when the event was not stored and must be replayed.
func (a *Adapter) intake(ctx context.Context, p payload) error {
	m, err := parseMessage(p.D)
	if err != nil {
		a.Metrics.Rejected("malformed")
		a.Log.WithError(err).WithField("seq", p.S).Warn("discord: dropping malformed event")
		return nil
	}
	in := &intake{platform: a.Name, botID: a.botID, requireMention: a.cfg.RequireMention, isThread: a.isThread}
	msg, skip := in.inbound(m, time.Now())
	if msg == nil {
		a.Log.WithFields(map[string]any{"message_id": m.ID, "reason": skip}).Debug("discord: message skipped")
		return nil
	}
	if err := msg.Validate(); err != nil {
		a.Metrics.Rejected("malformed")
		a.Log.WithError(err).WithField("message_id", m.ID).Warn("discord: dropping invalid message")
		return nil
	}
	if err := a.inbox.Deliver(ctx, msg); err != nil {
		if errors.Is(err, message.ErrInvalid) {
			a.Metrics.Rejected("malformed")
			a.Log.WithError(err).WithField("message_id", m.ID).Warn("discord: inbox refused message for good, skipping it")
			return nil
		}
		return fmt.Errorf("discord: inbox: message %s (seq %d) not stored, resuming from seq %d to have it replayed: %w", m.ID, p.S, a.seq.Load(), err)
	}
	return nil
}

// maxThreads bounds the thread cache; past it the cache starts over and
// messages in forgotten threads fall back to the position field.
const maxThreads = 50000

func (a *Adapter) trackThreads(p payload) {
	switch p.T {
	case "THREAD_CREATE", "THREAD_UPDATE":
		var ch channelData
		if parseInto(p.D, &ch) && ch.ID != "" {
			a.addThread(ch.ID)
		}
	case "THREAD_DELETE":
		var ch channelData
		if parseInto(p.D, &ch) {
			delete(a.threads, ch.ID)
		}
	default: // GUILD_CREATE, THREAD_LIST_SYNC
		var t threadsData
		if parseInto(p.D, &t) {
			for _, ch := range t.Threads {
				a.addThread(ch.ID)
			}
		}
	}
}

func (a *Adapter) addThread(id string) {
	if id == "" {
		return
	}
	if len(a.threads) >= maxThreads {
		a.threads = map[string]struct{}{}
	}
	a.threads[id] = struct{}{}
}

func (a *Adapter) isThread(id string) bool {
	_, ok := a.threads[id]
	return ok
}

// heartbeat sends op 1 every interval (the first after a random fraction of
// it) and declares the connection a zombie when the previous heartbeat was
// not acknowledged.
func (a *Adapter) heartbeat(ctx context.Context, c *gwConn, interval time.Duration, hard <-chan struct{}) {
	t := time.NewTimer(time.Duration(float64(interval) * a.tun.jitter()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.acked.Swap(false) {
			c.zombie.Store(true)
			a.Log.Warn("discord: heartbeat not acknowledged: zombie connection, closing to resume")
			c.close(closeReconnect, "heartbeat ack missing", a.tun.closeBound, hard)
			return
		}
		if err := c.send(ctx, heartbeatFrame(a.seq.Load())); err != nil {
			// The write failure closed the connection; the reader sees it.
			return
		}
		t.Reset(interval)
	}
}

// gwConn is one gateway websocket.
type gwConn struct {
	ws      *websocket.Conn
	raw     *connBox
	lim     *cmdLimiter
	timeout time.Duration
	acked   atomic.Bool
	zombie  atomic.Bool
	// live: READY or RESUMED arrived; the session is known alive.
	live      atomic.Bool
	closeOnce sync.Once
	stopOnce  sync.Once
}

// send writes one command within the gateway rate limit.
func (c *gwConn) send(ctx context.Context, b []byte) error {
	if err := c.lim.wait(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// close performs the close handshake with code, bounded by bound and by
// hard; then the TCP connection is closed by force. coder/websocket's own
// Close waits up to 5+5 s and a later CloseNow does not interrupt it, hence
// the net.Conn kept by the dialer. Only the first call acts; later ones wait
// for it.
func (c *gwConn) close(code websocket.StatusCode, reason string, bound time.Duration, hard <-chan struct{}) {
	c.closeOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.ws.Close(code, reason)
		}()
		t := time.NewTimer(bound)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
		case <-hard:
		}
		c.raw.close()
		<-done
	})
}

// connBox receives the net.Conn of a gateway dial.
type connBox struct {
	mu     sync.Mutex
	c      net.Conn
	closed bool
}

type connBoxKey struct{}

func (b *connBox) set(c net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.Close()
		return
	}
	if b.c != nil {
		b.c.Close()
	}
	b.c = c
}

func (b *connBox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.c != nil {
		b.c.Close()
	}
}

// recordingDialer hands every connection it dials to the connBox found in
// the dial context.
func recordingDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if b, ok := ctx.Value(connBoxKey{}).(*connBox); ok {
			b.set(c)
		}
		return c, nil
	}
}
