// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"cmp"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// AppToken is the app-level token apps.connections.open accepts.
	// Default "xapp-1-A1-test".
	AppToken string
	// BotToken is the bot token chat.* accept. Default "xoxb-test".
	BotToken string
	// BotUserID is the bot's user id, sent in authorizations. Default UBOT.
	BotUserID string
	// PingInterval is how often the server pings each connection (Slack
	// pings well under 30 s). Default 10s.
	PingInterval time.Duration
	// RedeliverAfter is how long an envelope may stay unacknowledged before
	// it is sent again with retry_attempt+1. Default 3s.
	RedeliverAfter time.Duration
	// MaxRetries bounds redeliveries of one envelope. Default 3.
	MaxRetries int
	// DisconnectGrace is how long after a warning or refresh_requested
	// disconnect the server closes the connection. Default 5s.
	DisconnectGrace time.Duration
	// Listen opens the server's listeners. Default net.Listen; a test
	// serving herald in another network namespace passes that namespace's
	// (systemdbox.Sandbox.Listen).
	Listen func(network, address string) (net.Listener, error)
	// MaxUploadBytes, when set, refuses larger uploads with
	// file_upload_size_restricted (a workspace that restricts uploads).
	MaxUploadBytes int64
}

func (o *Options) defaults() {
	o.AppToken = cmp.Or(o.AppToken, "xapp-1-A1-test")
	o.BotToken = cmp.Or(o.BotToken, "xoxb-test")
	o.BotUserID = cmp.Or(o.BotUserID, "UBOT")
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.RedeliverAfter <= 0 {
		o.RedeliverAfter = 3 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 3
	}
	if o.DisconnectGrace <= 0 {
		o.DisconnectGrace = 5 * time.Second
	}
	if o.Listen == nil {
		o.Listen = net.Listen
	}
}

// Server is the fake. Create it with New; Close it when done.
type Server struct {
	opts Options
	http *httptest.Server
	hole net.Listener
	ctx  context.Context // ends at Close
	stop context.CancelFunc
	wg   sync.WaitGroup

	// Faults at the points Open, Upgrade, Post and Update.
	fakeserver.Faults

	mu        sync.Mutex
	changes   fakeserver.Changes // wakes waitFor on every change
	opens     int
	holdHello bool
	others    int // connections another client holds, counted in hello
	tickets   map[string]bool
	conns     map[int]*wsConn // open
	all       map[int]*wsConn // ever accepted
	nextConn  int
	hellos    int
	closes    map[int]websocket.StatusCode
	seq       int
	pending   []*delivery
	acks      []Ack
	msgs      []*Message
	lastTS    int64 // microseconds of the newest message ts
	holeConns []net.Conn

	files       map[string]*File
	noFilesRead bool
	downloads   int
	leaked      int
	uploads     map[string]*pendingUpload
	uploadOrder []string
}

type wsConn struct {
	id     int
	ws     *websocket.Conn
	raw    *zconn // closing it ends every operation on ws at once
	ctx    context.Context
	cancel context.CancelFunc
	hello  bool         // hello sent (under Server.mu)
	pings  atomic.Int64 // pings received from the client
	pongs  atomic.Int64 // server pings the client answered
}

type delivery struct {
	eventID string
	typ     string
	payload json.RawMessage
	envIDs  map[string]int // envelope id -> retry attempt
	attempt int
	sentAt  time.Time
	acked   bool
}

// New starts a fake on 127.0.0.1.
func New(opts Options) *Server {
	opts.defaults()
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		ctx:     ctx,
		stop:    stop,
		tickets: map[string]bool{},
		conns:   map[int]*wsConn{},
		all:     map[int]*wsConn{},
		closes:  map[int]websocket.StatusCode{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/apps.connections.open", s.handleOpen)
	mux.HandleFunc("POST /api/chat.postMessage", s.handlePost)
	mux.HandleFunc("POST /api/chat.update", s.handleUpdate)
	mux.HandleFunc("/api/conversations.history", s.handleHistory)
	mux.HandleFunc("/api/conversations.replies", s.handleReplies)
	mux.HandleFunc("POST /api/files.getUploadURLExternal", s.handleGetUploadURL)
	mux.HandleFunc("POST /api/files.completeUploadExternal", s.handleComplete)
	mux.HandleFunc("POST /upload/v1/{id}", s.handleUploadBytes)
	mux.HandleFunc("GET /files-pri/{team_file}/", s.handleDownload)
	mux.HandleFunc("GET /signin", s.handleSignin)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method"})
	})
	mux.HandleFunc("GET /link/", s.handleLink)
	s.http = httptest.NewUnstartedServer(mux)
	s.http.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, rawConnKey{}, c)
	}
	ln, err := opts.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("slacktest: listen: " + err.Error())
	}
	s.http.Listener = zlistener{ln}
	s.http.Start()
	s.hole, err = opts.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.http.Close()
		panic("slacktest: listen: " + err.Error())
	}
	s.wg.Add(2)
	go s.acceptHole()
	go s.redeliverLoop()
	return s
}

type rawConnKey struct{}

// APIURL is the api_url to configure: http://127.0.0.1:port/api.
func (s *Server) APIURL() string { return s.http.URL + "/api" }

// AppToken and BotToken are the tokens the fake accepts.
func (s *Server) AppToken() string { return s.opts.AppToken }

// BotToken is the bot token the fake accepts.
func (s *Server) BotToken() string { return s.opts.BotToken }

// BotUserID is the bot's user id sent in authorizations.
func (s *Server) BotUserID() string { return s.opts.BotUserID }

// Close stops everything: black-holed requests return, connections are
// dropped without a close frame. It never hangs.
func (s *Server) Close() {
	s.stop()
	_ = s.hole.Close()
	s.mu.Lock()
	for _, c := range s.holeConns {
		_ = c.Close()
	}
	var conns []*wsConn
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.cancel()
		_ = c.raw.Close()
	}
	s.http.CloseClientConnections()
	s.http.Close()
	s.wg.Wait()
}

// notify wakes waiters; call with s.mu held.
func (s *Server) notify() { s.changes.Notify() }

// waitFor waits until cond (called with s.mu held) holds, re-checked on
// every state change, failing t after timeout.
func (s *Server) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	s.changes.Wait(t, timeout, "slacktest: "+what, fakeserver.Locked(&s.mu, cond))
}
