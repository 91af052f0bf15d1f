// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
	"github.com/heraldgw/herald/pkg/logging"
)

// readLimit bounds one websocket message. coder/websocket defaults to 32 KiB;
// Feishu events exceed that.
const readLimit = 4 << 20

// Platform codes of the bootstrap and the handshake (SDK ws/const.go).
const (
	codeOK              = 0
	codeSystemBusy      = 1
	codeInternalError   = 1000040343
	codeExceedConnLimit = 1000040350
	handshakeForbidden  = 403
	handshakeAuthFailed = 514
)

// clientConfig is the platform's connection policy (ClientConfig), in
// durations.
type clientConfig struct {
	reconnectCount    int // -1: unlimited
	reconnectInterval time.Duration
	reconnectNonce    time.Duration
	pingInterval      time.Duration
}

// wireClientConfig is ClientConfig as sent in the bootstrap response and in
// pong payloads (seconds). Absent fields keep their previous value. The
// fields are floats so that any JSON number decodes; applyConfig bounds
// them.
type wireClientConfig struct {
	ReconnectCount    *float64 `json:"ReconnectCount"`
	ReconnectInterval *float64 `json:"ReconnectInterval"`
	ReconnectNonce    *float64 `json:"ReconnectNonce"`
	PingInterval      *float64 `json:"PingInterval"`
}

// Bounds of the intervals the platform sends. It sends 90 to 120 s; a
// value outside the bounds is clamped and logged. Unbounded, a PingInterval
// of 9.3e9 s overflows time.Duration into a negative interval: the ping
// loop would spin and the read deadline (2×PingInterval + 5 s) would never
// detect a dead connection.
var (
	pingIntervalBounds      = [2]time.Duration{time.Second, 5 * time.Minute}
	reconnectIntervalBounds = [2]time.Duration{time.Second, 10 * time.Minute}
	reconnectNonceBounds    = [2]time.Duration{0, 5 * time.Minute}
)

// interval bounds the platform's value v (seconds) for the ClientConfig
// field name, logging a clamp.
func (a *Adapter) interval(name string, v float64, bounds [2]time.Duration) time.Duration {
	d, clamped := adapter.BoundWait(v, time.Second, bounds[0], bounds[1])
	if clamped {
		adapter.LogClamp(a.Log, "feishu: ClientConfig "+name+" (seconds)", v, d)
	}
	return d
}

// applyConfig adopts the fields present in w and reports whether the ping
// interval changed. Intervals of 0 or less are ignored (the previous value
// stays), as is a ReconnectNonce below 0; a ReconnectCount below 0 means
// unlimited.
func (a *Adapter) applyConfig(w *wireClientConfig) (pingChanged bool) {
	if w == nil {
		return false
	}
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	old := a.cc
	if w.ReconnectCount != nil {
		switch n := *w.ReconnectCount; {
		case n < 0 || math.IsNaN(n):
			a.cc.reconnectCount = -1
		default:
			a.cc.reconnectCount = int(min(n, math.MaxInt32))
		}
	}
	if w.ReconnectInterval != nil && *w.ReconnectInterval > 0 {
		a.cc.reconnectInterval = a.interval("ReconnectInterval", *w.ReconnectInterval, reconnectIntervalBounds)
	}
	if w.ReconnectNonce != nil && *w.ReconnectNonce >= 0 {
		a.cc.reconnectNonce = a.interval("ReconnectNonce", *w.ReconnectNonce, reconnectNonceBounds)
	}
	if w.PingInterval != nil && *w.PingInterval > 0 {
		a.cc.pingInterval = a.interval("PingInterval", *w.PingInterval, pingIntervalBounds)
	}
	if a.cc != old {
		a.Log.WithFields(map[string]any{
			"ping_interval": a.cc.pingInterval, "reconnect_interval": a.cc.reconnectInterval,
			"reconnect_nonce": a.cc.reconnectNonce, "reconnect_count": a.cc.reconnectCount,
		}).Debug("feishu: client config from the platform")
	}
	return a.cc.pingInterval != old.pingInterval
}

func (a *Adapter) clientConfig() clientConfig {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cc
}

// fatalError marks a connection error that no retry can fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error { return &fatalError{err} }

func isFatal(err error) bool {
	var fe *fatalError
	return errors.As(err, &fe)
}

// run is the intake goroutine: connect, serve the connection, reconnect,
// until ctx ends, Stop is called or a fatal error occurs.
func (a *Adapter) run(ctx context.Context, inbox adapter.Inbox) {
	var lastErr error
	retries := 0 // retries since the last successful connection
	for {
		if lastErr != nil {
			cc := a.clientConfig()
			if cc.reconnectCount >= 0 && retries >= cc.reconnectCount {
				a.giveUp(fmt.Errorf("feishu: reconnect attempts exhausted (platform ReconnectCount %d): %w", cc.reconnectCount, lastErr))
				return
			}
			delay := a.backoff(retries, cc)
			retries++
			if !a.sleep(ctx, delay, lastErr) {
				return
			}
			a.Metrics.Reconnect()
		}
		sess, err := a.connect(ctx)
		if ctx.Err() != nil || a.isStopping() {
			if sess != nil {
				sess.raw.close()
			}
			return
		}
		if err != nil {
			if isFatal(err) {
				a.giveUp(err)
				return
			}
			a.Log.WithError(err).Warn("feishu: connect failed; retrying")
			lastErr = err
			continue
		}
		if !a.publish(sess) {
			sess.raw.close()
			return
		}
		retries = 0
		a.Log.WithFields(map[string]any{"conn_id": sess.ep.deviceID, "endpoint": sess.ep.safe}).Info("feishu: connected")
		a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected})
		err = sess.serve(ctx, inbox)
		a.unpublish(sess)
		if ctx.Err() != nil || a.isStopping() {
			return
		}
		a.Log.WithError(err).Warn("feishu: connection lost; reconnecting")
		lastErr = err
	}
}

// giveUp reports a fatal error: herald stops retrying this platform.
func (a *Adapter) giveUp(err error) {
	logging.Event(a.Log, logging.MsgAdapterFatal).WithError(err).Error("feishu: giving up on the long connection; fix the app or its configuration, then reload herald")
	a.Life.Report(adapter.Status{Phase: adapter.PhaseFatal, Err: err})
}

// backoff returns the delay before retry number n (0-based) of a reconnect
// sequence: the first is random in [0, ReconnectNonce] like the SDK, so
// that many clients do not reconnect at once; then jittered exponential
// steps from backoffBase, capped by ReconnectInterval.
func (a *Adapter) backoff(n int, cc clientConfig) time.Duration {
	if n == 0 {
		if cc.reconnectNonce <= 0 {
			return 0
		}
		return rand.N(cc.reconnectNonce + 1)
	}
	return adapter.Backoff{Min: min(a.timing.backoffBase, cc.reconnectInterval), Max: cc.reconnectInterval}.Delay(n - 1)
}

// sleep reports PhaseReconnecting and waits d; false if ctx ended first.
func (a *Adapter) sleep(ctx context.Context, d time.Duration, cause error) bool {
	a.Life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, RetryAt: time.Now().Add(d), Err: cause})
	return adapter.Sleep(ctx, d)
}

// connect runs one bootstrap and one websocket handshake.
func (a *Adapter) connect(ctx context.Context) (*session, error) {
	ep, err := a.bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	a.applyConfig(ep.config)
	return a.dial(ctx, ep)
}

// endpoint is a bootstrap result. url carries a one-time ticket and an
// access key: never log it, log safe.
type endpoint struct {
	url       string
	safe      string
	serviceID int32
	deviceID  string
	config    *wireClientConfig
}

func (a *Adapter) bootstrap(ctx context.Context) (*endpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"AppID": a.appID, "AppSecret": a.secret.Reveal()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.conf.baseURL()+"/callback/ws/endpoint", bytes.NewReader(body))
	if err != nil {
		return nil, fatal(fmt.Errorf("feishu: bootstrap: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("locale", "zh")
	req.Header.Set("User-Agent", userAgent)
	resp, err := (&http.Client{Transport: a.tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("feishu: bootstrap: %w: %w", adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("feishu: bootstrap: reading response: %w: %w", adapter.ErrTemporary, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("feishu: bootstrap: HTTP %d: %w", resp.StatusCode, adapter.ErrTemporary)
	}
	var out struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data *struct {
			URL          string            `json:"URL"`
			ClientConfig *wireClientConfig `json:"ClientConfig"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("feishu: bootstrap: decoding response: %w: %w", adapter.ErrTemporary, err)
	}
	switch out.Code {
	case codeOK:
	case codeSystemBusy, codeInternalError:
		return nil, fmt.Errorf("feishu: bootstrap: server error (code %d: %s): %w", out.Code, out.Msg, adapter.ErrTemporary)
	case codeExceedConnLimit:
		return nil, fatal(fmt.Errorf("feishu: bootstrap: connection limit of the app reached (code %d: %s): %w", out.Code, out.Msg, adapter.ErrPermanent))
	default:
		return nil, fatal(fmt.Errorf("feishu: bootstrap: app rejected (code %d: %s): %w", out.Code, out.Msg, adapter.ErrUnauthorized))
	}
	if out.Data == nil || out.Data.URL == "" {
		return nil, fmt.Errorf("feishu: bootstrap: no endpoint URL in the response: %w", adapter.ErrTemporary)
	}
	u, err := url.Parse(out.Data.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("feishu: bootstrap: endpoint is not a websocket URL: %w", adapter.ErrTemporary)
	}
	ep := &endpoint{
		url:      out.Data.URL,
		safe:     u.Scheme + "://" + u.Host + u.Path,
		deviceID: u.Query().Get("device_id"),
		config:   out.Data.ClientConfig,
	}
	if s := u.Query().Get("service_id"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("feishu: bootstrap: service_id %q is not an int32: %w", s, adapter.ErrTemporary)
		}
		ep.serviceID = int32(n)
	}
	return ep, nil
}

// rawConn remembers the TCP connection under a websocket so that Stop can
// abort a close handshake the peer never answers: coder/websocket's Close
// waits up to 5+5 s and CloseNow does not interrupt a Close in progress.
type rawConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (r *rawConn) set(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.c = c
}

func (r *rawConn) close() {
	r.mu.Lock()
	c := r.c
	r.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

func (a *Adapter) dial(ctx context.Context, ep *endpoint) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	raw := &rawConn{}
	dialer := &net.Dialer{Timeout: a.conf.RequestTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				raw.set(c)
			}
			return c, err
		},
		TLSHandshakeTimeout: a.conf.RequestTimeout,
	}
	defer tr.CloseIdleConnections()
	conn, resp, err := websocket.Dial(ctx, ep.url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: http.Header{"User-Agent": []string{userAgent}},
	})
	if err != nil {
		raw.close()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, handshakeError(resp, ep)
		}
		return nil, fmt.Errorf("feishu: websocket handshake with %s: %w: %s", ep.safe, adapter.ErrTemporary, redact(err, ep.url))
	}
	conn.SetReadLimit(readLimit)
	return &session{
		a:          a,
		conn:       conn,
		raw:        raw,
		ep:         ep,
		cfgChanged: make(chan struct{}, 1),
		frags:      newReassembler(a.conf.FragmentTTL),
	}, nil
}

// handshakeError classifies a refused upgrade like the SDK: 403 and
// 514 with auth code 1000040350 (connection limit) are fatal; everything
// else is retried.
func handshakeError(resp *http.Response, ep *endpoint) error {
	code, err := strconv.Atoi(resp.Header.Get("Handshake-Status"))
	if err != nil || code == 0 {
		code = resp.StatusCode
	}
	msg := resp.Header.Get("Handshake-Msg")
	switch code {
	case handshakeForbidden:
		return fatal(fmt.Errorf("feishu: websocket handshake with %s forbidden (Handshake-Status %d: %s): %w", ep.safe, code, msg, adapter.ErrUnauthorized))
	case handshakeAuthFailed:
		auth, _ := strconv.Atoi(resp.Header.Get("Handshake-Autherrcode"))
		if auth == codeExceedConnLimit {
			return fatal(fmt.Errorf("feishu: websocket handshake with %s: connection limit of the app reached (Handshake-Autherrcode %d: %s): %w", ep.safe, auth, msg, adapter.ErrPermanent))
		}
		return fmt.Errorf("feishu: websocket handshake with %s refused (Handshake-Status %d, Handshake-Autherrcode %d: %s): %w", ep.safe, code, auth, msg, adapter.ErrTemporary)
	}
	return fmt.Errorf("feishu: websocket handshake with %s refused (status %d: %s): %w", ep.safe, code, msg, adapter.ErrTemporary)
}

// redact returns err's text without the endpoint's query (ticket, access
// key), which net/http includes in its errors.
func redact(err error, rawURL string) string {
	s := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.RawQuery != "" {
		s = strings.ReplaceAll(s, u.RawQuery, "<redacted>")
	}
	return s
}

// session is one websocket connection. Its read loop runs on the intake
// goroutine and owns the fragment buffer; a second goroutine sends pings.
type session struct {
	a          *Adapter
	conn       *websocket.Conn
	raw        *rawConn
	ep         *endpoint
	cfgChanged chan struct{}
	frags      *reassembler
}

// serve runs the connection until it fails or ctx ends.
func (s *session) serve(ctx context.Context, inbox adapter.Inbox) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pingLoop(sctx)
	}()
	err := s.readLoop(sctx, inbox)
	cancel()
	s.raw.close()
	wg.Wait()
	return err
}

// closeGracefully sends close 1000 and waits for the platform's answer at
// most wait and never past ctx; then it cuts the TCP connection, which also
// ends the close handshake still in progress. The goroutine running the
// handshake is one that Stop waits for.
func (s *session) closeGracefully(ctx context.Context, wait time.Duration) {
	done := make(chan struct{})
	s.a.Life.Go(func() {
		defer close(done)
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.a.Log.Warn("feishu: the platform did not answer the close frame in time; closing the connection")
	case <-ctx.Done():
	}
	s.raw.close()
}

func (s *session) pingLoop(ctx context.Context) {
	ping := (&pbbp2.Frame{
		Service: s.ep.serviceID,
		Method:  pbbp2.MethodControl,
		Headers: []pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypePing}},
	}).Marshal()
	t := time.NewTimer(0) // the first ping goes out at once
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cfgChanged:
			// The platform changed PingInterval: re-arm from the last ping.
			if !last.IsZero() {
				t.Reset(max(0, time.Until(last.Add(s.a.clientConfig().pingInterval))))
			}
			continue
		case <-t.C:
		}
		wctx, cancel := context.WithTimeout(ctx, s.a.timing.writeTimeout)
		err := s.conn.Write(wctx, websocket.MessageBinary, ping)
		cancel()
		if err != nil {
			// A failed write closes the connection; the read loop reports it.
			s.a.Log.WithError(err).Debug("feishu: ping failed")
			return
		}
		last = time.Now()
		t.Reset(s.a.clientConfig().pingInterval)
	}
}

func (s *session) readLoop(ctx context.Context, inbox adapter.Inbox) error {
	for {
		deadline := 2*s.a.clientConfig().pingInterval + s.a.timing.readGrace
		rctx, cancel := context.WithTimeout(ctx, deadline)
		typ, b, err := s.conn.Read(rctx)
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, context.DeadlineExceeded):
				return fmt.Errorf("feishu: no frame from the platform for %v: %w", deadline, adapter.ErrTemporary)
			default:
				return fmt.Errorf("feishu: read: %w: %s", adapter.ErrTemporary, redact(err, s.ep.url))
			}
		}
		if typ != websocket.MessageBinary {
			s.a.Log.Debug("feishu: ignoring a text websocket message")
			continue
		}
		s.handleFrame(ctx, inbox, b)
	}
}

// handleFrame processes one frame on the read loop. It never panics on
// platform input: anything malformed is logged, counted and, when it can
// never be processed, acknowledged.
func (s *session) handleFrame(ctx context.Context, inbox adapter.Inbox, b []byte) {
	start := time.Now()
	f, err := pbbp2.Unmarshal(b)
	if err != nil {
		s.a.Log.WithError(err).Warn("feishu: dropping an undecodable frame")
		s.a.Metrics.Rejected(reasonMalformed)
		return
	}
	switch f.Method {
	case pbbp2.MethodControl:
		if f.Type() != pbbp2.TypePong || len(f.Payload) == 0 {
			return
		}
		var w wireClientConfig
		if err := json.Unmarshal(f.Payload, &w); err != nil {
			s.a.Log.WithError(err).Warn("feishu: ignoring an undecodable ClientConfig in a pong")
			return
		}
		if s.a.applyConfig(&w) {
			select {
			case s.cfgChanged <- struct{}{}:
			default:
			}
		}
	case pbbp2.MethodData:
		switch f.Type() {
		case pbbp2.TypeEvent:
			s.handleEvent(ctx, inbox, f, start)
		case pbbp2.TypeCard:
			// herald subscribes to no card callbacks; like the SDK without a
			// card handler it does not answer.
			s.a.Log.Debug("feishu: ignoring a card callback")
		default:
			s.a.Log.WithField("type", f.Type()).Debug("feishu: ignoring a data frame of unknown type")
		}
	default:
		s.a.Log.WithField("method", f.Method).Debug("feishu: ignoring a frame with unknown method")
	}
}

func (s *session) handleEvent(ctx context.Context, inbox adapter.Inbox, f *pbbp2.Frame, start time.Time) {
	payload, complete, dropped, err := s.frags.add(f, start)
	if dropped > 0 {
		s.a.Log.WithField("sets", dropped).Warn("feishu: dropped incomplete fragmented events (older than fragment_ttl, or crowded out by newer ones); the platform will redeliver them")
		for range dropped {
			s.a.Metrics.Rejected(reasonIncomplete)
		}
	}
	if err != nil {
		// Bad fragment headers: this frame can never be reassembled.
		s.a.Log.WithError(err).Warn("feishu: acknowledging a malformed event frame")
		s.a.Metrics.Rejected(reasonMalformed)
		s.ack(ctx, f, start)
		return
	}
	if !complete {
		return
	}
	if ok, resp := s.a.process(ctx, inbox, payload, f.Header(pbbp2.HeaderTraceID)); ok {
		s.ackWith(ctx, f, start, resp)
	}
}

// ackPayload is the SDK's NewResponseByCode(200) marshalled: 200 is
// HTTP-style, not 0.
var ackPayload = []byte(`{"code":200,"headers":null,"data":null}`)

// ack echoes f (the frame that completed the event) with biz_rt added and
// the response payload.
func (s *session) ack(ctx context.Context, f *pbbp2.Frame, start time.Time) {
	s.ackWith(ctx, f, start, nil)
}

// ackWith is ack with the response payload resp (ackPayload if nil).
func (s *session) ackWith(ctx context.Context, f *pbbp2.Frame, start time.Time, resp []byte) {
	if resp == nil {
		resp = ackPayload
	}
	reply := *f
	reply.Headers = append(append([]pbbp2.Header(nil), f.Headers...),
		pbbp2.Header{Key: pbbp2.HeaderBizRT, Value: strconv.FormatInt(time.Since(start).Milliseconds(), 10)})
	reply.Payload = resp
	wctx, cancel := context.WithTimeout(ctx, s.a.timing.writeTimeout)
	defer cancel()
	if err := s.conn.Write(wctx, websocket.MessageBinary, reply.Marshal()); err != nil {
		s.a.Log.WithError(err).Debug("feishu: ack not sent; the platform will redeliver")
	}
}
