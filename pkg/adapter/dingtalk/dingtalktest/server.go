// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Credentials the fake accepts unless Options says otherwise.
const (
	DefaultClientID     = "dingfakeclientid"
	DefaultClientSecret = "fake-client-secret"
	// TokenTTL is the expireIn of the access tokens (DingTalk: 7200 s).
	TokenTTL = 7200
)

// Options configure a Server.
type Options struct {
	ClientID, ClientSecret string
}

// Server is a running fake DingTalk. Its methods are safe for concurrent
// use.
type Server struct {
	URL  string
	opts Options
	srv  *httptest.Server

	closed    chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	changes   fakeserver.Changes // wakes Await on every change
	conn      *websocket.Conn
	connID    int
	deaf      bool
	tickets   map[string]bool
	raw       []*freezeConn
	opens     int
	dials     int
	subs      []json.RawMessage
	pending   []pushed // unacknowledged frames, in push order
	acks      []Ack
	tokens    map[string]bool
	tokenReqs int
	sent      []Sent
	rejected  bool
	limitAPI  int
	limitHook int
	hooksDead bool
	holdHook  bool
	files     map[string]*File  // by downloadCode
	links     map[string]string // downloadUrl id → downloadCode
	linksDead bool
	slow      time.Duration
	uploads   []Upload
	media     map[string]Upload // by media_id
	failUp    []int
}

type pushed struct {
	id    string
	frame []byte
}

// Ack is an acknowledgement the client sent.
type Ack struct {
	Code      int
	MessageID string
	Message   string
	Data      string
}

// Sent is a reply the fake accepted.
type Sent struct {
	// Via is "webhook", "batchSend" or "groupSend".
	Via string
	// MsgKey is the robot template: sampleText, sampleImageMsg or
	// sampleFile ("" through the webhook).
	MsgKey string
	// MediaID, FileName and FileType are the media template's parameters.
	MediaID, FileName, FileType string
	// To is the conversation (group, webhook) or staff id (batchSend).
	To      string
	Text    string
	IsAtAll bool
	Robot   string
}

// New starts a fake on 127.0.0.1; it stops at the end of the test.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	return NewOn(t, net.Listen, opts)
}

// NewOn starts a fake on 127.0.0.1 of the network listen opens it in (a
// sandbox's namespace); it stops at the end of the test.
func NewOn(t testing.TB, listen func(network, address string) (net.Listener, error), opts Options) *Server {
	t.Helper()
	ln, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dingtalktest: listen: %v", err)
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	s := &Server{opts: opts, closed: make(chan struct{}), tickets: map[string]bool{}, tokens: map[string]bool{},
		files: map[string]*File{}, links: map[string]string{}, media: map[string]Upload{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.0/gateway/connections/open", s.open)
	mux.HandleFunc("GET /connect", s.connect)
	mux.HandleFunc("POST /v1.0/oauth2/accessToken", s.accessToken)
	mux.HandleFunc("POST /v1.0/robot/oToMessages/batchSend", s.robotSend)
	mux.HandleFunc("POST /v1.0/robot/groupMessages/send", s.robotSend)
	mux.HandleFunc("POST /robot/sendBySession", s.webhook)
	mux.HandleFunc("POST /v1.0/robot/messageFiles/download", s.downloadCode)
	mux.HandleFunc("GET /file/{id}", s.download)
	mux.HandleFunc("POST /media/upload", s.upload)
	s.srv = &httptest.Server{Listener: &freezeListener{Listener: ln, s: s}, Config: &http.Server{Handler: mux}}
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close drops the stream and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	c, raw := s.conn, s.raw
	s.conn, s.raw = nil, nil
	s.mu.Unlock()
	if c != nil {
		c.CloseNow()
	}
	for _, rc := range raw {
		rc.Close()
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) changedLocked() { s.changes.Notify() }

// Await waits until cond holds; cond may call the server's accessors.
func (s *Server) Await(t testing.TB, what string, timeout time.Duration, cond func(*Server) bool) {
	t.Helper()
	if !s.changes.Await(timeout, func() bool { return cond(s) }) {
		t.Fatalf("dingtalktest: timed out after %v waiting for %s", timeout, what)
	}
}

func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes an OpenAPI error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg, "requestid": newID("req")})
}

func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID      string            `json:"clientId"`
		ClientSecret  string            `json:"clientSecret"`
		Subscriptions []json.RawMessage `json:"subscriptions"`
		UA            string            `json:"ua"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, 400, "InvalidParameter", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	s.changedLocked()
	if s.rejected || req.ClientID != s.opts.ClientID || req.ClientSecret != s.opts.ClientSecret {
		apiError(w, 401, "InvalidAuthentication", "clientId or clientSecret is wrong")
		return
	}
	if len(req.Subscriptions) == 0 {
		apiError(w, 400, "InvalidParameter", "subscriptions is required")
		return
	}
	s.subs = req.Subscriptions
	ticket := newID("tk")
	s.tickets[ticket] = true
	writeJSON(w, 200, map[string]string{"endpoint": "ws" + strings.TrimPrefix(s.URL, "http") + "/connect", "ticket": ticket})
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	ok := s.tickets[ticket]
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !ok {
		apiError(w, 403, "InvalidTicket", "ticket unknown or used")
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	s.mu.Lock()
	// A replaced connection stays open until the client closes it, so
	// that an acknowledgement it sent last is still read.
	s.conn, s.deaf = c, false
	s.connID++
	s.dials++
	id := s.connID
	// Unacknowledged frames come again on the new connection, in order.
	resend := append([]pushed(nil), s.pending...)
	s.changedLocked()
	s.mu.Unlock()
	for _, p := range resend {
		s.write(c, p.frame)
	}
	s.read(c, id)
}

// read takes the client's acknowledgements until the connection ends or
// the server is made deaf.
func (s *Server) read(c *websocket.Conn, id int) {
	defer func() {
		s.mu.Lock()
		if s.connID == id && s.conn == c {
			s.conn = nil
		}
		s.changedLocked()
		s.mu.Unlock()
	}()
	for {
		_, b, err := c.Read(context.Background())
		if err != nil {
			return
		}
		var a struct {
			Code    int               `json:"code"`
			Headers map[string]string `json:"headers"`
			Message string            `json:"message"`
			Data    string            `json:"data"`
		}
		if json.Unmarshal(b, &a) != nil {
			continue
		}
		ack := Ack{Code: a.Code, MessageID: a.Headers["messageId"], Message: a.Message, Data: a.Data}
		s.mu.Lock()
		s.acks = append(s.acks, ack)
		if a.Code == 200 && a.Headers["contentType"] == "application/json" {
			for i, p := range s.pending {
				if p.id == ack.MessageID {
					s.pending = append(s.pending[:i], s.pending[i+1:]...)
					break
				}
			}
		}
		s.changedLocked()
		s.mu.Unlock()
	}
}

func (s *Server) write(c *websocket.Conn, b []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b) == nil
}

func (s *Server) frame(typ, topic, data string) (string, []byte) {
	id := newID("msg")
	b, _ := json.Marshal(map[string]any{
		"specVersion": "1.0",
		"type":        typ,
		"headers": map[string]string{
			"appId":        s.opts.ClientID,
			"connectionId": newID("conn"),
			"contentType":  "application/json",
			"messageId":    id,
			"time":         fmt.Sprint(time.Now().UnixMilli()),
			"topic":        topic,
		},
		"data": data,
	})
	return id, b
}

// send writes a frame on the live connection; false if there is none or
// it is blackholed.
func (s *Server) send(b []byte) bool {
	s.mu.Lock()
	c, deaf := s.conn, s.deaf
	s.mu.Unlock()
	if c == nil || deaf {
		return false
	}
	return s.write(c, b)
}
