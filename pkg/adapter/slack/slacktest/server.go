// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
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
	// (sandbox.Sandbox.Listen).
	Listen func(network, address string) (net.Listener, error)
}

func (o *Options) defaults() {
	if o.AppToken == "" {
		o.AppToken = "xapp-1-A1-test"
	}
	if o.BotToken == "" {
		o.BotToken = "xoxb-test"
	}
	if o.BotUserID == "" {
		o.BotUserID = "UBOT"
	}
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

// Blackhole selects endpoints that accept a request and never answer.
type Blackhole int

const (
	// BlackholeOpen: apps.connections.open reads the request and hangs.
	BlackholeOpen Blackhole = 1 << iota
	// BlackholeUpgrade: apps.connections.open answers with a URL whose
	// server accepts TCP connections and never answers the handshake.
	BlackholeUpgrade
	// BlackholePost: chat.postMessage records the message (the user sees
	// it) and never answers.
	BlackholePost
	// BlackholeUpdate: chat.update applies the edit and never answers.
	BlackholeUpdate
)

// Fault is a scripted Web API failure.
type Fault struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Error is the "error" of an {"ok":false} body; empty sends no JSON
	// body unless Status is 200 or 429.
	Error string
	// RetryAfter, if positive, is sent as Retry-After (seconds).
	RetryAfter int
}

// Event is a message or app_mention event to push.
type Event struct {
	// EventID defaults to a generated Ev… id.
	EventID string
	// Type defaults to "message".
	Type        string
	Channel     string
	ChannelType string
	User        string
	Text        string
	// TS defaults to a generated timestamp.
	TS       string
	ThreadTS string
	BotID    string
	Subtype  string
}

// SlashCommand is a slash_commands payload to push.
type SlashCommand struct {
	Command     string
	Text        string
	ChannelID   string
	ChannelName string
	UserID      string
	UserName    string
	TriggerID   string
}

// Pushed identifies a pushed envelope.
type Pushed struct {
	EnvelopeID string
	EventID    string
}

// Ack is an acknowledgement received from the client.
type Ack struct {
	EnvelopeID   string
	EventID      string // "" if the envelope is unknown
	RetryAttempt int
	Conn         int
}

// Message is a message posted with chat.postMessage, as it stands after
// chat.update calls.
type Message struct {
	Channel  string
	Text     string // as sent (Slack mrkdwn, entities escaped)
	ThreadTS string
	TS       string
	Edits    int
	// Metadata is the message metadata posted with it, if any.
	Metadata *Metadata
}

// Metadata is Slack's message metadata: an event type and a free-form
// payload.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Display is the text as a Slack user sees it: entities decoded.
func (m Message) Display() string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(m.Text)
}

// Server is the fake. Create it with New; Close it when done.
type Server struct {
	opts Options
	http *httptest.Server
	hole net.Listener
	ctx  context.Context // ends at Close
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu         sync.Mutex
	changed    chan struct{}
	opens      int
	openFaults []Fault
	upgradeErr []int // HTTP statuses for the next websocket upgrades
	postFaults []Fault
	blackhole  Blackhole
	holdHello  bool
	tickets    map[string]bool
	conns      map[int]*wsConn // open
	all        map[int]*wsConn // ever accepted
	nextConn   int
	hellos     int
	closes     map[int]websocket.StatusCode
	seq        int
	pending    []*delivery
	acks       []Ack
	msgs       []*Message
	lastTS     int64 // microseconds of the newest message ts
	holeConns  []net.Conn
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
		changed: make(chan struct{}),
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
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor polls cond on every state change until it holds or timeout.
func (s *Server) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("slacktest: %s: not within %v", what, timeout)
			return
		}
	}
}

// ---- Web API ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// auth checks the bearer token: not_authed without one, invalid_auth for
// an unknown one, not_allowed_token_type for the other known token.
func (s *Server) auth(w http.ResponseWriter, r *http.Request, want, other string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	code := ""
	switch {
	case !ok || tok == "":
		code = "not_authed"
	case tok == other:
		code = "not_allowed_token_type"
	case tok != want:
		code = "invalid_auth"
	}
	if code != "" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
		return false
	}
	return true
}

// fault answers with the next scripted fault, if any.
func (s *Server) fault(w http.ResponseWriter, q *[]Fault) bool {
	s.mu.Lock()
	if len(*q) == 0 {
		s.mu.Unlock()
		return false
	}
	f := (*q)[0]
	*q = (*q)[1:]
	s.mu.Unlock()
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if f.Error == "" && status != http.StatusOK && status != http.StatusTooManyRequests {
		http.Error(w, http.StatusText(status), status)
		return true
	}
	code := f.Error
	if code == "" && status == http.StatusTooManyRequests {
		code = "ratelimited"
	}
	writeJSON(w, status, map[string]any{"ok": false, "error": code})
	return true
}

// hang holds a request until the client gives up or the server closes.
// The body is drained first: net/http only notices a client going away
// once the body has been read.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
}

func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.opens++
	bh := s.blackhole
	s.notify()
	s.mu.Unlock()
	if bh&BlackholeOpen != 0 {
		s.hang(r)
		return
	}
	if !s.auth(w, r, s.opts.AppToken, s.opts.BotToken) || s.fault(w, &s.openFaults) {
		return
	}
	s.mu.Lock()
	s.seq++
	ticket := fmt.Sprintf("tk-%d-%d", s.seq, time.Now().UnixNano())
	s.tickets[ticket] = true
	s.mu.Unlock()
	host := strings.TrimPrefix(s.http.URL, "http://")
	if bh&BlackholeUpgrade != 0 {
		host = s.hole.Addr().String()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ok":  true,
		"url": "ws://" + host + "/link/?ticket=" + ticket + "&app_id=A1",
	})
}

type postBody struct {
	Channel  string          `json:"channel"`
	Text     string          `json:"text"`
	ThreadTS string          `json:"thread_ts"`
	TS       string          `json:"ts"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) decodePost(w http.ResponseWriter, r *http.Request) (postBody, bool) {
	var b postBody
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_form_data"})
		return b, false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_json"})
		return b, false
	}
	_, _ = io.Copy(io.Discard, r.Body) // see hang
	return b, true
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	b, ok := s.decodePost(w, r)
	if !ok || !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.fault(w, &s.postFaults) {
		return
	}
	switch {
	case b.Channel == "":
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	case b.Text == "":
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	md, ok := parseMetadata(b.Metadata)
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_metadata_format"})
		return
	}
	s.mu.Lock()
	s.seq++
	m := &Message{Channel: b.Channel, Text: b.Text, ThreadTS: b.ThreadTS, TS: s.nextTSLocked(), Metadata: md}
	s.msgs = append(s.msgs, m)
	bh := s.blackhole
	s.notify()
	s.mu.Unlock()
	if bh&BlackholePost != 0 {
		s.hang(r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	b, ok := s.decodePost(w, r)
	if !ok || !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.fault(w, &s.postFaults) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.Channel == b.Channel && m.TS == b.TS {
			m.Text = b.Text
			m.Edits++
			s.notify()
			if s.blackhole&BlackholeUpdate != 0 {
				s.mu.Unlock()
				s.hang(r)
				s.mu.Lock()
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "message_not_found"})
}

// ---- Socket Mode ----

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	var reject int
	if len(s.upgradeErr) > 0 {
		reject, s.upgradeErr = s.upgradeErr[0], s.upgradeErr[1:]
	}
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	if reject != 0 {
		http.Error(w, "upgrade refused", reject)
		return
	}
	raw, _ := r.Context().Value(rawConnKey{}).(*zconn)
	if raw == nil {
		http.Error(w, "no connection", http.StatusInternalServerError)
		return
	}
	c := &wsConn{raw: raw}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Slack's clients send Origin: https://api.slack.com.
		InsecureSkipVerify: true,
		OnPingReceived: func(context.Context, []byte) bool {
			c.pings.Add(1)
			return true
		},
	})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c.ws = ws
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	defer c.cancel()
	s.mu.Lock()
	s.nextConn++
	c.id = s.nextConn
	s.conns[c.id] = c
	s.all[c.id] = c
	hold := s.holdHello
	s.notify()
	s.mu.Unlock()
	if !hold {
		s.sendHello(c)
	}
	s.wg.Add(1)
	go s.pinger(c)
	s.readAcks(c)
	s.mu.Lock()
	delete(s.conns, c.id)
	s.notify()
	s.mu.Unlock()
}

func (s *Server) sendHello(c *wsConn) {
	s.mu.Lock()
	if c.hello {
		s.mu.Unlock()
		return
	}
	c.hello = true
	n := len(s.conns)
	s.mu.Unlock()
	_ = s.write(c, map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": "A1"},
	})
	s.mu.Lock()
	s.hellos++
	s.notify()
	s.mu.Unlock()
}

func (s *Server) write(c *wsConn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.writeRaw(c, b)
}

func (s *Server) writeRaw(c *wsConn, b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (s *Server) pinger(c *wsConn) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.raw.zombie.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		if c.ws.Ping(ctx) == nil {
			c.pongs.Add(1)
		}
		cancel()
	}
}

// readAcks reads the client's frames: acknowledgements, and the close
// frame whose status is recorded.
func (s *Server) readAcks(c *wsConn) {
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			s.mu.Lock()
			s.closes[c.id] = websocket.CloseStatus(err)
			s.mu.Unlock()
			_ = c.ws.CloseNow()
			return
		}
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		a := Ack{EnvelopeID: ack.EnvelopeID, Conn: c.id}
		for _, d := range s.pending {
			if n, ok := d.envIDs[ack.EnvelopeID]; ok {
				d.acked = true
				a.EventID, a.RetryAttempt = d.eventID, n
			}
		}
		s.acks = append(s.acks, a)
		s.notify()
		s.mu.Unlock()
	}
}

// newest returns the most recent connection that has been sent hello;
// call with s.mu held.
func (s *Server) newest() *wsConn {
	var best *wsConn
	for _, c := range s.conns {
		if c.hello && (best == nil || c.id > best.id) {
			best = c
		}
	}
	return best
}

// send writes delivery d as a new envelope on c (nil: the newest
// connection); it stays pending until acknowledged.
func (s *Server) send(c *wsConn, d *delivery) (string, error) {
	s.mu.Lock()
	if c == nil {
		c = s.newest()
	}
	if c == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slacktest: no connection")
	}
	s.seq++
	id := fmt.Sprintf("env-%d", s.seq)
	d.envIDs[id] = d.attempt
	d.sentAt = time.Now()
	env := map[string]any{
		"envelope_id":              id,
		"type":                     d.typ,
		"payload":                  d.payload,
		"accepts_response_payload": d.typ != "events_api",
	}
	if d.attempt > 0 {
		env["retry_attempt"] = d.attempt
		env["retry_reason"] = "timeout"
	}
	s.mu.Unlock()
	return id, s.write(c, env)
}

func (s *Server) push(connID int, typ, eventID string, payload any) Pushed {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	d := &delivery{eventID: eventID, typ: typ, payload: b, envIDs: map[string]int{}}
	s.mu.Lock()
	var c *wsConn
	if connID != 0 {
		c = s.conns[connID]
		if c == nil {
			s.mu.Unlock()
			panic(fmt.Sprintf("slacktest: no connection %d", connID))
		}
	}
	s.pending = append(s.pending, d)
	s.mu.Unlock()
	id, _ := s.send(c, d)
	return Pushed{EnvelopeID: id, EventID: eventID}
}

func (s *Server) eventPayload(ev *Event) map[string]any {
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	if ev.EventID == "" {
		ev.EventID = fmt.Sprintf("Ev%06d", n)
	}
	if ev.Type == "" {
		ev.Type = "message"
	}
	if ev.TS == "" {
		ev.TS = fmt.Sprintf("1690000000.%06d", n)
	}
	e := map[string]any{"type": ev.Type, "channel": ev.Channel, "user": ev.User, "text": ev.Text, "ts": ev.TS, "event_ts": ev.TS}
	for k, v := range map[string]string{"channel_type": ev.ChannelType, "thread_ts": ev.ThreadTS, "bot_id": ev.BotID, "subtype": ev.Subtype} {
		if v != "" {
			e[k] = v
		}
	}
	return map[string]any{
		"token":      "verification-token",
		"team_id":    "T1",
		"api_app_id": "A1",
		"event":      e,
		"type":       "event_callback",
		"event_id":   ev.EventID,
		"event_time": 1690000000,
		"authorizations": []map[string]any{
			{"enterprise_id": nil, "team_id": "T1", "user_id": s.opts.BotUserID, "is_bot": true, "is_enterprise_install": false},
		},
		"is_ext_shared_channel": false,
	}
}

// PushEvent sends an events_api envelope on the newest connection.
func (s *Server) PushEvent(ev Event) Pushed { return s.PushEventTo(0, ev) }

// PushEventTo sends an events_api envelope on connection id (0: newest).
func (s *Server) PushEventTo(id int, ev Event) Pushed {
	p := s.eventPayload(&ev)
	return s.push(id, "events_api", ev.EventID, p)
}

// PushSlash sends a slash_commands envelope on the newest connection.
func (s *Server) PushSlash(sc SlashCommand) Pushed {
	if sc.TriggerID == "" {
		s.mu.Lock()
		s.seq++
		sc.TriggerID = fmt.Sprintf("trig-%d", s.seq)
		s.mu.Unlock()
	}
	return s.push(0, "slash_commands", "slash:"+sc.TriggerID, map[string]any{
		"token": "verification-token", "team_id": "T1", "team_domain": "fake",
		"channel_id": sc.ChannelID, "channel_name": sc.ChannelName,
		"user_id": sc.UserID, "user_name": sc.UserName,
		"command": sc.Command, "text": sc.Text, "api_app_id": "A1",
		"response_url": "https://hooks.slack.invalid/commands/1", "trigger_id": sc.TriggerID,
	})
}

// PushInteractive sends an interactive (block_actions) envelope.
func (s *Server) PushInteractive() Pushed {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("interactive-%d", s.seq)
	s.mu.Unlock()
	return s.push(0, "interactive", id, map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U1"}, "trigger_id": id,
		"actions": []map[string]any{{"action_id": "a1", "value": "v"}},
	})
}

// PushRaw writes a frame as is on the newest connection; it is not tracked
// for redelivery.
func (s *Server) PushRaw(frame string) error {
	s.mu.Lock()
	c := s.newest()
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("slacktest: no connection")
	}
	return s.writeRaw(c, []byte(frame))
}

// Redeliver sends the envelope of eventID again at once, acknowledged or
// not, with retry_attempt+1, as Slack does when an acknowledgement is lost.
func (s *Server) Redeliver(eventID string) Pushed {
	s.mu.Lock()
	var d *delivery
	for _, p := range s.pending {
		if p.eventID == eventID {
			d = p
		}
	}
	if d == nil {
		s.mu.Unlock()
		panic("slacktest: unknown event " + eventID)
	}
	d.attempt++
	d.acked = false
	s.mu.Unlock()
	id, _ := s.send(nil, d)
	return Pushed{EnvelopeID: id, EventID: eventID}
}

func (s *Server) acceptHole() {
	defer s.wg.Done()
	for {
		c, err := s.hole.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.holeConns = append(s.holeConns, c)
		s.notify()
		s.mu.Unlock()
	}
}

// WaitHoleConns waits until n connections reached the black-holed
// websocket endpoint (BlackholeUpgrade).
func (s *Server) WaitHoleConns(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d black-holed handshakes", n), func() bool { return len(s.holeConns) >= n })
}

func (s *Server) redeliverLoop() {
	defer s.wg.Done()
	tick := max(s.opts.RedeliverAfter/5, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var due []*delivery
		s.mu.Lock()
		for _, d := range s.pending {
			if !d.acked && d.attempt < s.opts.MaxRetries && time.Since(d.sentAt) >= s.opts.RedeliverAfter && s.newest() != nil {
				d.attempt++
				due = append(due, d)
			}
		}
		s.mu.Unlock()
		for _, d := range due {
			_, _ = s.send(nil, d)
		}
	}
}

// Disconnect sends {"type":"disconnect","reason":reason} on the newest
// connection. After warning and refresh_requested the server closes that
// connection when DisconnectGrace has passed; after link_disabled at once.
// It returns the connection id.
func (s *Server) Disconnect(reason string) int {
	s.mu.Lock()
	c := s.newest()
	s.mu.Unlock()
	if c == nil {
		panic("slacktest: no connection")
	}
	_ = s.write(c, map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "slacktest"}})
	grace := s.opts.DisconnectGrace
	if reason == "link_disabled" {
		grace = 0
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
		s.closeConn(c)
	}()
	return c.id
}

// closeConn sends a close frame and drops the connection if the client
// has not answered within a second.
func (s *Server) closeConn(c *wsConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	case <-s.ctx.Done():
	}
	_ = c.raw.Close()
	<-done
}

// Drop closes every connection abruptly: no close frame.
func (s *Server) Drop() {
	s.mu.Lock()
	var conns []*wsConn
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.raw.Close()
	}
}

// Zombie makes the newest connection a dead link whose TCP connection
// stays up: from now on every byte the client sends is dropped unread (no
// pong, no acknowledgement, no answer to a close frame) and nothing
// reaches the client.
// It returns the connection id.
func (s *Server) Zombie() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newest()
	if c == nil {
		panic("slacktest: no connection")
	}
	c.raw.zombie.Store(true)
	return c.id
}

// Sync pings connection id and waits for the pong. The client answers
// pings from its read loop, so every frame it sent before the pong (an
// acknowledgement, say) has been recorded when Sync returns.
func (s *Server) Sync(ctx context.Context, id int) error {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("slacktest: no connection %d", id)
	}
	return c.ws.Ping(ctx)
}

// HoldHello makes new connections wait for ReleaseHello before hello.
func (s *Server) HoldHello(hold bool) {
	s.mu.Lock()
	s.holdHello = hold
	s.mu.Unlock()
}

// ReleaseHello sends hello on every connection still waiting for it.
func (s *Server) ReleaseHello() {
	s.mu.Lock()
	s.holdHello = false
	var waiting []*wsConn
	for _, c := range s.conns {
		if !c.hello {
			waiting = append(waiting, c)
		}
	}
	s.mu.Unlock()
	for _, c := range waiting {
		s.sendHello(c)
	}
}

// SetBlackhole selects the endpoints that never answer (0: none).
func (s *Server) SetBlackhole(b Blackhole) {
	s.mu.Lock()
	s.blackhole = b
	s.mu.Unlock()
}

// FailOpen makes the next n apps.connections.open calls answer f.
func (s *Server) FailOpen(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.openFaults = append(s.openFaults, f)
	}
}

// FailUpgrade makes the next n websocket handshakes fail with HTTP status.
func (s *Server) FailUpgrade(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.upgradeErr = append(s.upgradeErr, status)
	}
}

// FailPost makes the next n chat.postMessage or chat.update calls answer f.
func (s *Server) FailPost(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.postFaults = append(s.postFaults, f)
	}
}

// Opens counts apps.connections.open calls.
func (s *Server) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// Live returns the ids of open connections that have been sent hello,
// ascending.
func (s *Server) Live() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id := 1; id <= s.nextConn; id++ {
		if c, ok := s.conns[id]; ok && c.hello {
			ids = append(ids, id)
		}
	}
	return ids
}

// Pings returns how many pings the client sent on connection id, and how
// many of the server's pings it answered.
func (s *Server) Pings(id int) (fromClient, answered int) {
	s.mu.Lock()
	c := s.all[id]
	s.mu.Unlock()
	if c == nil {
		return 0, 0
	}
	return int(c.pings.Load()), int(c.pongs.Load())
}

// Conns counts open websocket connections, with or without hello.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitHellos waits until n hellos have been sent in total and returns the
// id of the newest connection with hello.
func (s *Server) WaitHellos(t testing.TB, n int, timeout time.Duration) int {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d hellos", n), func() bool { return s.hellos >= n })
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.newest(); c != nil {
		return c.id
	}
	return 0
}

// WaitConns waits until n websocket connections are open at once.
func (s *Server) WaitConns(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d open connections", n), func() bool { return len(s.conns) >= n })
}

// WaitOpens waits until apps.connections.open was called n times.
func (s *Server) WaitOpens(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d apps.connections.open calls", n), func() bool { return s.opens >= n })
}

// WaitClosed waits until connection id has ended and returns the close
// status the client sent (-1: none, the TCP connection just went away).
func (s *Server) WaitClosed(t testing.TB, id int, timeout time.Duration) websocket.StatusCode {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("connection %d closed", id), func() bool { _, ok := s.closes[id]; return ok })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closes[id]
}

// Acks returns the acknowledgements received so far.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// WaitAck waits for an acknowledgement of eventID and returns the first.
func (s *Server) WaitAck(t testing.TB, eventID string, timeout time.Duration) Ack {
	t.Helper()
	var got Ack
	s.waitFor(t, timeout, "ack of "+eventID, func() bool {
		for _, a := range s.acks {
			if a.EventID == eventID {
				got = a
				return true
			}
		}
		return false
	})
	return got
}

// Messages returns the posted messages as they stand.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = *m
	}
	return out
}

// WaitMessages waits until n messages have been posted.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d messages", n), func() bool { return len(s.msgs) >= n })
	return s.Messages()
}

// zlistener wraps accepted connections so that Zombie can cut them off
// without closing them.
type zlistener struct{ net.Listener }

func (l zlistener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &zconn{Conn: c, closed: make(chan struct{})}, nil
}

// zconn is a server-side connection that can turn into a zombie: reads
// swallow the client's bytes and then block until Close, writes vanish.
type zconn struct {
	net.Conn
	zombie    atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *zconn) Read(p []byte) (int, error) {
	for {
		if c.zombie.Load() {
			<-c.closed
			return 0, net.ErrClosed
		}
		n, err := c.Conn.Read(p)
		if err != nil || !c.zombie.Load() {
			return n, err
		}
		// Became a zombie while this read was waiting: drop what came.
	}
}

func (c *zconn) Write(p []byte) (int, error) {
	if c.zombie.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *zconn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
