// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
)

// ClientConfig is the connection policy the platform hands out with the
// endpoint and, optionally, in pong payloads. Values are seconds.
type ClientConfig struct {
	ReconnectCount    int `json:"ReconnectCount"`
	ReconnectInterval int `json:"ReconnectInterval"`
	ReconnectNonce    int `json:"ReconnectNonce"`
	PingInterval      int `json:"PingInterval"`
}

// Options configure a Server. Zero fields take the documented defaults.
type Options struct {
	// AppID and AppSecret are the credentials the fake accepts. Defaults
	// "cli_test" and "test-secret".
	AppID     string
	AppSecret string
	// ServiceID is the service_id in the websocket URL, expected in every
	// frame's service field. Default 7.
	ServiceID int32
	// Config is the ClientConfig returned by the bootstrap. Default
	// {ReconnectCount: -1, ReconnectInterval: 1, ReconnectNonce: 0,
	// PingInterval: 30}: immediate first retry, retries at most 1 s apart.
	Config *ClientConfig
	// RedeliverAfter is how long a pushed event may stay unacknowledged
	// before the fake pushes it again (same event_id, new frame message_id),
	// like the platform's 3 s rule. Default 3s; negative disables.
	RedeliverAfter time.Duration
	// TokenExpire is the "expire" (seconds) of issued tenant access tokens.
	// Default 7200.
	TokenExpire int
	// BotOpenID is the bot's open_id returned by /open-apis/bot/v3/info.
	// Default "ou_bot".
	BotOpenID string
	// Listener, if set, is where the fake serves (for instance a listener
	// in a sandbox's network namespace); the fake owns it. Default: a new
	// listener on 127.0.0.1.
	Listener net.Listener
}

// BootstrapMode selects how POST /callback/ws/endpoint answers.
type BootstrapMode int

const (
	// BootstrapOK returns an endpoint when the credentials match, else code
	// 10014 (any code other than 0, 1 and 1000040343 is a client error).
	BootstrapOK BootstrapMode = iota
	// BootstrapHTTP500 answers HTTP 500 (server error: retry).
	BootstrapHTTP500
	// BootstrapBusy answers code 1 "system busy" (retry).
	BootstrapBusy
	// BootstrapInternal answers code 1000040343 (retry).
	BootstrapInternal
	// BootstrapEmptyURL answers code 0 without data.URL (retry).
	BootstrapEmptyURL
	// BootstrapConnLimit answers code 1000040350, the connection limit
	// (client error: fatal).
	BootstrapConnLimit
	// BootstrapBlackhole reads the request and never answers.
	BootstrapBlackhole
)

// Bootstrap is one recorded endpoint request.
type Bootstrap struct {
	AppID       string
	AppSecret   string
	Locale      string
	ContentType string
	UserAgent   string
}

// Ack is one acknowledgement received from the client.
type Ack struct {
	// EventID is the event_id of the acknowledged push ("" for frames pushed
	// with PushPayload that carried no event_id).
	EventID string
	// FrameMessageID is the frame-level message_id header echoed back.
	FrameMessageID string
	Code           int
	SeqID          uint64
	LogID          uint64
	// BizRT is the biz_rt header the client added.
	BizRT string
	// Data is the response's data (a card callback's answer), nil if none.
	Data   []byte
	Frame  *pbbp2.Frame
	AtTime time.Time
}

// Server is the fake platform. Create it with New; it is closed by the
// test's cleanup.
type Server struct {
	t    testing.TB
	opts Options
	hs   *httptest.Server

	// Faults at the points Handshake and Messages.
	fakeserver.Faults

	ctx    context.Context // cancelled by Close: ends websocket reads
	cancel context.CancelFunc
	quit   chan struct{} // closed by Close: releases blackholed handlers
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	changes fakeserver.Changes // wakes waitFor on every change

	bootstrapMode BootstrapMode
	bootstraps    []Bootstrap

	freeze     bool
	pongConfig *ClientConfig
	wsAttempts int
	conns      []*wsConn
	connCount  int
	pings      []time.Time
	closeCodes []websocket.StatusCode

	seq        uint64
	frameIDs   int
	eventIDs   int
	pending    map[string]*attempt // frame message_id -> push
	queue      []*delivery         // waiting for a connection
	acks       []Ack
	deliveries map[string]int // event_id -> pushes

	rest      restState
	resources map[resourceKey]Resource
	uploads   []*Upload
}

type wsConn struct {
	c       *websocket.Conn
	dropped chan struct{}
	once    sync.Once
}

func (w *wsConn) drop() {
	w.once.Do(func() {
		close(w.dropped)
		_ = w.c.CloseNow()
	})
}

// New starts a Server on 127.0.0.1 and registers its Close with t.Cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	opts.AppID = cmp.Or(opts.AppID, "cli_test")
	opts.AppSecret = cmp.Or(opts.AppSecret, "test-secret")
	if opts.ServiceID == 0 {
		opts.ServiceID = 7
	}
	if opts.Config == nil {
		opts.Config = &ClientConfig{ReconnectCount: -1, ReconnectInterval: 1, ReconnectNonce: 0, PingInterval: 30}
	}
	if opts.RedeliverAfter == 0 {
		opts.RedeliverAfter = 3 * time.Second
	}
	if opts.TokenExpire == 0 {
		opts.TokenExpire = 7200
	}
	opts.BotOpenID = cmp.Or(opts.BotOpenID, "ou_bot")
	s := &Server{
		t:          t,
		opts:       opts,
		quit:       make(chan struct{}),
		pending:    map[string]*attempt{},
		deliveries: map[string]int{},
		rest:       newRestState(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /callback/ws/endpoint", s.handleBootstrap)
	mux.HandleFunc("GET /ws/v2", s.handleWS)
	s.restRoutes(mux)
	if opts.Listener != nil {
		s.hs = &httptest.Server{Listener: opts.Listener, Config: &http.Server{Handler: mux}}
		s.hs.Start()
	} else {
		s.hs = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the base URL to configure as base_url.
func (s *Server) URL() string { return s.hs.URL }

// Close ends every connection and handler and stops the server. It is safe
// to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := append([]*wsConn(nil), s.conns...)
	for _, at := range s.pending {
		at.d.stop()
	}
	s.mu.Unlock()
	close(s.quit)
	s.cancel()
	for _, c := range conns {
		c.drop()
	}
	s.hs.CloseClientConnections()
	s.hs.Close()
	s.wg.Wait()
}

// changed wakes every Wait* helper; call with s.mu held.
func (s *Server) changed() { s.changes.Notify() }

// waitFor waits until cond (called with s.mu held) is true.
func (s *Server) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	s.changes.Wait(t, timeout, "feishutest: "+what, fakeserver.Locked(&s.mu, cond))
}

// ---- bootstrap ----

// SetBootstrapMode changes how later bootstrap requests are answered.
func (s *Server) SetBootstrapMode(m BootstrapMode) { fakeserver.Set(&s.mu, &s.bootstrapMode, m) }

// Bootstraps returns the bootstrap requests received so far.
func (s *Server) Bootstraps() []Bootstrap { return fakeserver.Copy(&s.mu, &s.bootstraps) }

// WaitBootstraps waits until at least n bootstrap requests have arrived.
func (s *Server) WaitBootstraps(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d bootstrap requests", n), func() bool { return len(s.bootstraps) >= n })
}

func (s *Server) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AppID     string `json:"AppID"`
		AppSecret string `json:"AppSecret"`
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body)
	s.mu.Lock()
	s.bootstraps = append(s.bootstraps, Bootstrap{
		AppID: body.AppID, AppSecret: body.AppSecret,
		Locale: r.Header.Get("locale"), ContentType: r.Header.Get("Content-Type"), UserAgent: r.Header.Get("User-Agent"),
	})
	mode := s.bootstrapMode
	n := len(s.bootstraps)
	s.changed()
	s.mu.Unlock()
	if err != nil {
		s.t.Errorf("feishutest: bootstrap body: %v", err)
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 10002, "msg": "bad request"})
		return
	}
	switch mode {
	case BootstrapBlackhole:
		fakeserver.Hold(r, s.quit)
		return
	case BootstrapHTTP500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case BootstrapBusy:
		writeJSON(w, http.StatusOK, map[string]any{"code": 1, "msg": "system busy"})
		return
	case BootstrapInternal:
		writeJSON(w, http.StatusOK, map[string]any{"code": 1000040343, "msg": "internal error"})
		return
	case BootstrapConnLimit:
		writeJSON(w, http.StatusOK, map[string]any{"code": 1000040350, "msg": "exceed connection limit"})
		return
	case BootstrapEmptyURL:
		writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "ok", "data": map[string]any{}})
		return
	}
	if body.AppID != s.opts.AppID || body.AppSecret != s.opts.AppSecret {
		writeJSON(w, http.StatusOK, map[string]any{"code": 10014, "msg": "app secret invalid"})
		return
	}
	u := fmt.Sprintf("ws://%s/ws/v2?fpid=1&aid=1&device_id=dev%d&access_key=ak-secret&service_id=%d&ticket=tk-%d",
		r.Host, n, s.opts.ServiceID, n)
	writeJSON(w, http.StatusOK, map[string]any{
		"code": 0, "msg": "ok",
		"data": map[string]any{"URL": u, "ClientConfig": s.opts.Config},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ---- websocket ----

// SetFreeze makes later websocket connections go silent after the
// handshake: the fake never reads (so it never answers pings or a close
// frame) and never writes.
func (s *Server) SetFreeze(on bool) { fakeserver.Set(&s.mu, &s.freeze, on) }

// SetPongConfig makes pongs carry cfg as their payload (nil: empty pongs).
func (s *Server) SetPongConfig(cfg *ClientConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pongConfig = cfg
}

// WSAttempts is the number of websocket upgrade requests received.
func (s *Server) WSAttempts() int { return fakeserver.Get(&s.mu, &s.wsAttempts) }

// WaitWSAttempts waits for n websocket upgrade requests.
func (s *Server) WaitWSAttempts(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d websocket upgrade requests", n), func() bool { return s.wsAttempts >= n })
}

// Connections is the number of websocket connections accepted so far.
func (s *Server) Connections() int { return fakeserver.Get(&s.mu, &s.connCount) }

// WaitConnections waits until n websocket connections have been accepted.
func (s *Server) WaitConnections(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d websocket connections", n), func() bool { return s.connCount >= n })
}

// Live is the number of websocket connections currently open.
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitLive waits until exactly n connections are open.
func (s *Server) WaitLive(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d live connections", n), func() bool { return len(s.conns) == n })
}

// Pings returns when each ping arrived.
func (s *Server) Pings() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.pings...)
}

// WaitPings waits until n pings have arrived.
func (s *Server) WaitPings(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d pings", n), func() bool { return len(s.pings) >= n })
}

// CloseCodes returns the status codes of close frames received from
// clients.
func (s *Server) CloseCodes() []websocket.StatusCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]websocket.StatusCode(nil), s.closeCodes...)
}

// WaitCloseCodes waits until n close frames have been received.
func (s *Server) WaitCloseCodes(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d close frames", n), func() bool { return len(s.closeCodes) >= n })
}

// DropConnections closes every websocket connection abruptly (TCP close, no
// close frame), forcing the client to bootstrap again.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := append([]*wsConn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	s.wsAttempts++
	freeze := s.freeze
	s.changed()
	s.mu.Unlock()

	if f, ok := s.Take(Handshake); ok {
		s.handshakeFault(w, r, f)
		return
	}
	if r.URL.Query().Get("service_id") != strconv.Itoa(int(s.opts.ServiceID)) || r.URL.Query().Get("ticket") == "" {
		s.t.Errorf("feishutest: websocket URL %q lacks the bootstrap's service_id/ticket", r.URL.RequestURI())
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(16 << 20)
	wc := &wsConn{c: c, dropped: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		wc.drop()
		return
	}
	s.conns = append(s.conns, wc)
	s.connCount++
	queued := s.queue
	s.queue = nil
	s.changed()
	s.mu.Unlock()
	defer s.removeConn(wc)

	if freeze {
		select {
		case <-s.quit:
		case <-wc.dropped:
		}
		return
	}
	for _, d := range queued {
		s.send(d)
	}
	for {
		typ, b, err := c.Read(s.ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				s.mu.Lock()
				s.closeCodes = append(s.closeCodes, code)
				s.changed()
				s.mu.Unlock()
			}
			return
		}
		if typ != websocket.MessageBinary {
			s.t.Errorf("feishutest: client sent a %v message; the protocol uses binary frames only", typ)
			continue
		}
		s.handleClientFrame(wc, b)
	}
}

func (s *Server) removeConn(wc *wsConn) {
	wc.drop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.conns {
		if c == wc {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	s.changed()
}

func (s *Server) handleClientFrame(wc *wsConn, b []byte) {
	f, err := pbbp2.Unmarshal(b)
	if err != nil {
		s.t.Errorf("feishutest: the platform would reject this client frame: %v (%x)", err, b)
		return
	}
	if f.Service != s.opts.ServiceID {
		s.t.Errorf("feishutest: client frame has service %d, want service_id %d", f.Service, s.opts.ServiceID)
	}
	switch f.Method {
	case pbbp2.MethodControl:
		if f.Type() != pbbp2.TypePing {
			s.t.Errorf("feishutest: unexpected control frame type %q", f.Type())
			return
		}
		s.mu.Lock()
		s.pings = append(s.pings, time.Now())
		cfg := s.pongConfig
		s.changed()
		s.mu.Unlock()
		pong := &pbbp2.Frame{Service: s.opts.ServiceID, Method: pbbp2.MethodControl,
			Headers: []pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypePong}}}
		if cfg != nil {
			pong.Payload, _ = json.Marshal(cfg)
		}
		s.write(wc, pong.Marshal())
	case pbbp2.MethodData:
		s.handleAck(f)
	default:
		s.t.Errorf("feishutest: client frame with unknown method %d", f.Method)
	}
}

func (s *Server) write(wc *wsConn, b []byte) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	_ = wc.c.Write(ctx, websocket.MessageBinary, b)
}
