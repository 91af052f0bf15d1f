// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Defaults of Options.
const (
	DefaultToken = "test-token"
	DefaultBotID = "100000000000000001"
)

// Options configure a Server.
type Options struct {
	// Token the server accepts ("Bot <Token>" on REST, token in Identify).
	Token string
	// BotID is the bot's user id in READY.
	BotID string
	// HeartbeatInterval sent in Hello. Default 45s; tests of heartbeats use
	// a few tens of milliseconds.
	HeartbeatInterval time.Duration
	// ResumeGatewayURL is sent in READY. Default GatewayURL.
	ResumeGatewayURL string
}

// Server is a fake Discord. All methods are safe for concurrent use.
type Server struct {
	// URL is http://127.0.0.1:port.
	URL string
	// APIURL is URL + "/api/v10", the adapter's api_url.
	APIURL string
	// GatewayURL is ws://127.0.0.1:port/gw, returned by GET /gateway/bot and
	// as resume_gateway_url.
	GatewayURL string
	Token      string
	BotID      string

	// Faults at the points Gateway, REST and Messages.
	fakeserver.Faults

	hs     *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // handler goroutines and conn writers

	mu       sync.Mutex
	changed  chan struct{}
	interval time.Duration
	resume   string
	raw      map[string]net.Conn
	closed   bool

	// gateway
	sessions     map[string]*session
	current      *session
	pending      []event // pushed before any session exists
	conns        []*conn
	live         *conn
	nextSession  int
	nextEventMsg int64
	identifies   []Identify
	resumes      []Resume
	heartbeats   []Heartbeat
	clientCloses []int
	gwRequests   int
	upgrades     int

	// gateway scripts
	gatewayStatus int
	startLimit    *[2]int64 // remaining, reset_after (ms) of session_start_limit
	noReady       bool
	holdResume    bool
	rejectResume  bool
	identifyClose int

	// REST
	nextMsgID  int64
	messages   []*Message
	byNonce    map[string]*Message
	requests   []Request
	typing     int
	bucketCfg  *bucketConfig
	buckets    map[string]*bucketState
	violations int
	// interactions pushed with PushPress, by id
	interactions map[string]*interactionState

	// CDN
	cdn         map[string]*cdnFile
	cdnGen      int
	cdnRequests int
	cdnAuth     int
}

// New starts a fake Discord and closes it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("discordtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake Discord; the caller must Close it.
func Start(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.BotID == "" {
		opts.BotID = DefaultBotID
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 45 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Token:     opts.Token,
		BotID:     opts.BotID,
		ctx:       ctx,
		cancel:    cancel,
		changed:   make(chan struct{}),
		interval:  opts.HeartbeatInterval,
		resume:    opts.ResumeGatewayURL,
		raw:       map[string]net.Conn{},
		sessions:  map[string]*session{},
		byNonce:   map[string]*Message{},
		buckets:   map[string]*bucketState{},
		nextMsgID: 900000000000000000,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v10/gateway", s.api(s.handleGateway))
	mux.HandleFunc("GET /api/v10/gateway/bot", s.api(s.handleGateway))
	mux.HandleFunc("POST /api/v10/channels/{channel}/messages", s.api(s.handleCreate))
	mux.HandleFunc("PATCH /api/v10/channels/{channel}/messages/{message}", s.api(s.handleEdit))
	mux.HandleFunc("POST /api/v10/channels/{channel}/typing", s.api(s.handleTyping))
	mux.HandleFunc("GET /api/v10/channels/{channel}/messages/{message}", s.api(s.handleGetMessage))
	mux.HandleFunc("POST /api/v10/interactions/{id}/{token}/callback", s.api(s.handleCallback))
	mux.HandleFunc("GET /attachments/{channel}/{att}/{name}", s.handleCDN)
	mux.HandleFunc("/gw/", s.handleWS)
	s.hs = httptest.NewUnstartedServer(mux)
	s.hs.Listener.Close()
	s.hs.Listener = &trackingListener{Listener: ln, s: s}
	s.hs.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	s.hs.Start()
	s.URL = s.hs.URL
	s.APIURL = s.URL + "/api/v10"
	s.GatewayURL = "ws" + strings.TrimPrefix(s.URL, "http") + "/gw"
	if s.resume == "" {
		s.resume = s.GatewayURL
	}
	return s, nil
}

// Close stops the server: blackholed requests return, websockets and TCP
// connections are closed by force. It never hangs.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cancel()
	for _, c := range s.raw {
		c.Close()
	}
	s.mu.Unlock()
	s.hs.Close()
	s.wg.Wait()
}

type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	if l.s.closed {
		c.Close()
	} else {
		l.s.raw[c.RemoteAddr().String()] = c
	}
	l.s.mu.Unlock()
	return c, nil
}

// notify wakes waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Await waits until cond (called with no lock held) is true, failing the
// test after timeout. It re-checks whenever the server's state changes.
func (s *Server) Await(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		// Also poll: conditions may depend on state outside the server.
		tick := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			tick.Stop()
			t.Fatalf("discordtest: %s: not within %v", what, timeout)
			return
		}
		tick.Stop()
	}
}

// Request is one REST request as the server saw it.
type Request struct {
	Method string
	Path   string
	Auth   string
	Body   []byte
	Status int
}

// api wraps REST handlers: recording, blackhole and token check.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request, body []byte) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		var uerr error
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
			var ups []Upload
			body, ups, uerr = readMultipart(r)
			r = withUploads(r, ups)
		} else if r.Body != nil {
			body, _ = readAll(r.Body, 1<<20)
		}
		s.mu.Lock()
		if r.URL.Path == "/api/v10/gateway/bot" || r.URL.Path == "/api/v10/gateway" {
			s.gwRequests++
		}
		i := len(s.requests)
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
		s.notify()
		s.mu.Unlock()
		if f, ok := s.Take(REST); ok {
			s.serveFault(w, r, f, "")
			return
		}
		var status int
		switch {
		case r.URL.Path != "/api/v10/gateway" && r.Header.Get("Authorization") != "Bot "+s.Token:
			status = writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
		case errors.Is(uerr, errTooLarge):
			status = writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"message": "Request entity too large", "code": 40005})
		case uerr != nil:
			status = writeJSON(w, http.StatusBadRequest, errorBodies[http.StatusBadRequest])
		default:
			status = h(w, r, body)
		}
		s.mu.Lock()
		s.requests[i].Status = status
		s.notify()
		s.mu.Unlock()
	}
}

func readAll(r interface{ Read([]byte) (int, error) }, limit int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for len(out) < limit {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, nil
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
	return status
}

func (s *Server) handleGateway(w http.ResponseWriter, r *http.Request, _ []byte) int {
	s.mu.Lock()
	st := s.gatewayStatus
	s.mu.Unlock()
	if st != 0 {
		return writeJSON(w, st, map[string]any{"message": http.StatusText(st), "code": 0})
	}
	v := map[string]any{"url": s.GatewayURL}
	if strings.HasSuffix(r.URL.Path, "/bot") {
		v["shards"] = 1
		v["session_start_limit"] = map[string]any{"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
		s.mu.Lock()
		if l := s.startLimit; l != nil {
			v["session_start_limit"] = map[string]any{"total": 1000, "remaining": l[0], "reset_after": l[1], "max_concurrency": 1}
		}
		s.mu.Unlock()
	}
	return writeJSON(w, http.StatusOK, v)
}

// SetGatewayStatus makes GET /gateway[/bot] answer status (0 restores 200).
func (s *Server) SetGatewayStatus(status int) { fakeserver.Set(&s.mu, &s.gatewayStatus, status) }

// SetSessionStartLimit makes GET /gateway/bot report remaining session
// starts and the reset_after (ms) of the daily budget.
func (s *Server) SetSessionStartLimit(remaining, resetAfterMs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLimit = &[2]int64{remaining, resetAfterMs}
}

// GatewayRequests counts GET /gateway[/bot] requests.
func (s *Server) GatewayRequests() int { return fakeserver.Get(&s.mu, &s.gwRequests) }

// Requests returns every REST request so far.
func (s *Server) Requests() []Request { return fakeserver.Copy(&s.mu, &s.requests) }

// Message is a message created through REST, as a user sees it.
type Message struct {
	ID              string
	ChannelID       string
	Content         string
	Nonce           string
	EnforceNonce    bool
	ReplyTo         string
	AllowedMentions json.RawMessage // of the create, then of the latest edit
	Edits           int
	// Attachments are the files of a multipart create.
	Attachments []Upload
	// Buttons are the buttons of its action rows.
	Buttons []Button
}

// Button is a button component.
type Button struct {
	Label    string
	Style    int
	CustomID string
}

type createBody struct {
	Content          string          `json:"content"`
	Nonce            json.RawMessage `json:"nonce"`
	EnforceNonce     bool            `json:"enforce_nonce"`
	AllowedMentions  json.RawMessage `json:"allowed_mentions"`
	MessageReference *struct {
		MessageID string `json:"message_id"`
	} `json:"message_reference"`
	Components json.RawMessage `json:"components"`
}

// parseButtons reads the action rows of a create: their buttons, and
// whether they are valid (at most 5 rows of at most 5 buttons; a button
// has a label of at most 80 characters, a style 1-4 and a custom_id of
// 1-100 characters, unique in the message).
func parseButtons(raw json.RawMessage) ([]Button, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var rows []struct {
		Type       int `json:"type"`
		Components []struct {
			Type     int    `json:"type"`
			Style    int    `json:"style"`
			Label    string `json:"label"`
			CustomID string `json:"custom_id"`
		} `json:"components"`
	}
	if json.Unmarshal(raw, &rows) != nil || len(rows) > 5 {
		return nil, false
	}
	var out []Button
	ids := map[string]bool{}
	for _, r := range rows {
		if r.Type != 1 || len(r.Components) == 0 || len(r.Components) > 5 {
			return nil, false
		}
		for _, c := range r.Components {
			if c.Type != 2 || c.Style < 1 || c.Style > 4 || c.Label == "" || utf8.RuneCountInString(c.Label) > 80 ||
				c.CustomID == "" || utf8.RuneCountInString(c.CustomID) > 100 || ids[c.CustomID] {
				return nil, false
			}
			ids[c.CustomID] = true
			out = append(out, Button{Label: c.Label, Style: c.Style, CustomID: c.CustomID})
		}
	}
	return out, true
}

type bucketConfig struct {
	limit  int
	window time.Duration
}

type bucketState struct {
	remaining int
	reset     time.Time
}

// SetBucket enforces a bucket of limit create requests per window and
// channel, announced with X-RateLimit headers. A request to an exhausted
// bucket is answered 429 and counted as a violation.
func (s *Server) SetBucket(limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bucketCfg = &bucketConfig{limit: limit, window: window}
}

// Violations counts requests sent to an exhausted bucket.
func (s *Server) Violations() int { return fakeserver.Get(&s.mu, &s.violations) }

// Messages returns the messages users see, edits applied.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

// Typing counts typing requests.
func (s *Server) Typing() int { return fakeserver.Get(&s.mu, &s.typing) }

var errorBodies = map[int]map[string]any{
	http.StatusBadRequest:          {"message": "Invalid Form Body", "code": 50035},
	http.StatusForbidden:           {"message": "Missing Permissions", "code": 50013},
	http.StatusNotFound:            {"message": "Unknown Channel", "code": 10003},
	http.StatusInternalServerError: {"message": "Internal Server Error", "code": 0},
	http.StatusBadGateway:          {"message": "Bad Gateway", "code": 0},
}

// scripted answers the fault at Messages if it is answered before the
// request is processed (a rejection or a rate limit); s.mu held.
func (s *Server) scripted(w http.ResponseWriter, bucket string) (int, bool) {
	f, ok := s.TakeIf(Messages, fakeserver.KindReject, fakeserver.KindRateLimit)
	if !ok {
		return 0, false
	}
	return s.serveFault(w, nil, f, bucket), true
}

// limit applies the bucket of channel; s.mu held.
func (s *Server) limit(w http.ResponseWriter, channel string) (int, bool) {
	cfg := s.bucketCfg
	if cfg == nil {
		return 0, false
	}
	now := time.Now()
	b := s.buckets[channel]
	if b == nil || !now.Before(b.reset) {
		b = &bucketState{remaining: cfg.limit, reset: now.Add(cfg.window)}
		s.buckets[channel] = b
	}
	h := w.Header()
	h.Set("X-RateLimit-Bucket", "msgbucket")
	h.Set("X-RateLimit-Limit", strconv.Itoa(cfg.limit))
	after := b.reset.Sub(now).Seconds()
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	if b.remaining == 0 {
		s.violations++
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Scope", "user")
		return writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": after, "global": false, "code": 0,
		}), true
	}
	b.remaining--
	h.Set("X-RateLimit-Remaining", strconv.Itoa(b.remaining))
	return 0, false
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, body []byte) int {
	channel := r.PathValue("channel")
	var b createBody
	if err := json.Unmarshal(body, &b); err != nil {
		return writeJSON(w, http.StatusBadRequest, errorBodies[http.StatusBadRequest])
	}
	s.mu.Lock()
	if st, done := s.scripted(w, "msgbucket"); done {
		s.mu.Unlock()
		return st
	}
	if st, done := s.limit(w, channel); done {
		s.mu.Unlock()
		return st
	}
	ups := uploadsOf(r)
	buttons, ok := parseButtons(b.Components)
	if !ok {
		s.mu.Unlock()
		return writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035,
			"errors": map[string]any{"components": "invalid"}})
	}
	if n := utf8.RuneCountInString(b.Content); (n == 0 && len(ups) == 0) || n > 2000 {
		s.mu.Unlock()
		return writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035,
			"errors": map[string]any{"content": fmt.Sprintf("%d characters, must be 1..2000", n)}})
	}
	nonce := rawString(b.Nonce)
	m := s.byNonce[nonce]
	if m == nil || !b.EnforceNonce || nonce == "" {
		s.nextMsgID++
		m = &Message{
			ID: strconv.FormatInt(s.nextMsgID, 10), ChannelID: channel, Content: b.Content,
			Nonce: nonce, EnforceNonce: b.EnforceNonce, AllowedMentions: b.AllowedMentions,
			Attachments: ups, Buttons: buttons,
		}
		if b.MessageReference != nil {
			m.ReplyTo = b.MessageReference.MessageID
		}
		s.messages = append(s.messages, m)
		if b.EnforceNonce && nonce != "" {
			s.byNonce[nonce] = m
		}
	}
	_, hang := s.TakeIf(Messages, fakeserver.KindBlackhole)
	resp := map[string]any{"id": m.ID, "channel_id": m.ChannelID, "content": m.Content, "nonce": m.Nonce,
		"author": map[string]any{"id": s.BotID, "bot": true}}
	s.notify()
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		return 0
	}
	return writeJSON(w, http.StatusOK, resp)
}

func rawString(b json.RawMessage) string {
	var str string
	if json.Unmarshal(b, &str) == nil {
		return str
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		return n.String()
	}
	return ""
}

func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request, body []byte) int {
	var b createBody
	if err := json.Unmarshal(body, &b); err != nil {
		return writeJSON(w, http.StatusBadRequest, errorBodies[http.StatusBadRequest])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, done := s.scripted(w, "editbucket"); done {
		return st
	}
	for _, m := range s.messages {
		if m.ID == r.PathValue("message") && m.ChannelID == r.PathValue("channel") {
			m.Content = b.Content
			m.AllowedMentions = b.AllowedMentions
			m.Edits++
			s.notify()
			return writeJSON(w, http.StatusOK, map[string]any{"id": m.ID, "channel_id": m.ChannelID, "content": m.Content})
		}
	}
	return writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown Message", "code": 10008})
}

func (s *Server) handleTyping(w http.ResponseWriter, r *http.Request, _ []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, done := s.scripted(w, "typingbucket"); done {
		return st
	}
	s.typing++
	s.notify()
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}
