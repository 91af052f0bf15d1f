// SPDX-License-Identifier: Apache-2.0

package mattermosttest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Fixed identities of the fake.
const (
	DefaultToken = "mm-test-token"
	BotID        = "botuserid00000000000000000"
	BotUsername  = "herald"
	TeamID       = "teamid0000000000000000000a"
)

// Post is a post as the fake stores it, in the API's JSON shape.
type Post struct {
	ID            string         `json:"id"`
	CreateAt      int64          `json:"create_at"`
	UpdateAt      int64          `json:"update_at"`
	DeleteAt      int64          `json:"delete_at"`
	UserID        string         `json:"user_id"`
	ChannelID     string         `json:"channel_id"`
	RootID        string         `json:"root_id"`
	Message       string         `json:"message"`
	Type          string         `json:"type"`
	Props         map[string]any `json:"props"`
	PendingPostID string         `json:"pending_post_id"`
	FileIDs       []string       `json:"file_ids,omitempty"`
	Metadata      *Metadata      `json:"metadata,omitempty"`
}

// Metadata is the part of a post's metadata the fake fills: the FileInfo
// of each attached file.
type Metadata struct {
	Files []FileInfo `json:"files,omitempty"`
}

// Server is one fake Mattermost.
type Server struct {
	URL string
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	token      string
	expired    bool
	channels   map[string]string // id → type (O, P, D, G)
	forbidden  map[string]bool   // listed, but its posts answer 403
	posts      []*Post
	pending    map[string]pendingEntry
	pendingTTL time.Duration
	lastAt     int64
	seq        int64
	conns      map[*conn]bool // live: receive events
	all        map[*conn]bool // open, blackholed ones included
	dialed     int
	refuseWS   bool
	limited    int
	retryAfter string
	rateReset  string
	loseAnswer int
	holdAnswer int
	held       int
	requests   map[string]int
	written    int // events written to websockets
	changes    fakeserver.Changes
	files      map[string]*file
	uploads    []Upload
	maxFile    int64
	failPosts  int
	ctx        context.Context
	cancel     context.CancelFunc
}

type pendingEntry struct {
	id string
	at time.Time
}

// conn is one websocket on the server side.
type conn struct {
	ws     *websocket.Conn
	out    chan []byte
	cancel context.CancelFunc
	tcp    *freezeConn
}

// New starts a fake accepting token on 127.0.0.1, with one public channel
// "town" (type O) and one direct channel "dm" (type D) the bot is a member
// of.
func New(t testing.TB, token string) *Server {
	return NewOn(t, net.Listen, token)
}

// NewOn is New on a listener from listen (a sandbox's network namespace).
func NewOn(t testing.TB, listen func(network, address string) (net.Listener, error), token string) *Server {
	t.Helper()
	ln, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mattermosttest: listen: %v", err)
	}
	s := &Server{
		t:          t,
		token:      token,
		channels:   map[string]string{"town": "O", "dm": "D"},
		forbidden:  map[string]bool{},
		pending:    map[string]pendingEntry{},
		pendingTTL: 30 * time.Second,
		conns:      map[*conn]bool{},
		all:        map[*conn]bool{},
		requests:   map[string]int{},
		files:      map[string]*file{},
		maxFile:    DefaultMaxFileSize,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v4/users/me", s.rest(s.me))
	mux.HandleFunc("GET /api/v4/users/me/teams", s.rest(s.teams))
	mux.HandleFunc("GET /api/v4/users/me/teams/{team}/channels", s.rest(s.listChannels))
	mux.HandleFunc("GET /api/v4/channels/{channel}/posts", s.rest(s.postsSince))
	mux.HandleFunc("POST /api/v4/posts", s.rest(s.createPost))
	mux.HandleFunc("GET /api/v4/files/{file}", s.rest(s.getFile))
	mux.HandleFunc("POST /api/v4/files", s.rest(s.uploadFile))
	mux.HandleFunc("GET /api/v4/websocket", s.websocket)
	s.srv = &httptest.Server{
		Listener: freezeListener{ln},
		Config:   &http.Server{Handler: mux, ConnContext: connContext},
	}
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(s.close)
	return s
}

func (s *Server) close() {
	s.cancel()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.all))
	for c := range s.all {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.cancel()
		c.ws.CloseNow()
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// notify wakes Wait; s.mu held.
func (s *Server) notify() { s.changes.Notify() }

// Wait waits until cond (called without the fake's lock) holds, failing
// the test after timeout with what.
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	s.changes.Wait(t, timeout, "mattermosttest: "+what, cond)
}

func newID() string {
	const alphabet = "abcdefghijkmnopqrstuwxyz13456789"
	b := make([]byte, 26)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, id, msg string) {
	writeJSON(w, code, map[string]any{"id": id, "message": msg, "status_code": code})
}

// rest wraps a REST handler with authentication and the rate limit.
func (s *Server) rest(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.Method+" "+r.URL.Path]++
		s.notify()
		ok := !s.expired && r.Header.Get("Authorization") == "Bearer "+s.token
		limited := s.limited > 0
		if ok && limited {
			s.limited--
		}
		retryAfter, reset := s.retryAfter, s.rateReset
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")
			return
		}
		if limited {
			w.Header().Set("X-Ratelimit-Limit", "10")
			w.Header().Set("X-Ratelimit-Remaining", "0")
			if reset != "" {
				w.Header().Set("X-Ratelimit-Reset", reset)
			}
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeError(w, http.StatusTooManyRequests, "api.context.rate_limit.app_error", "Too many requests")
			return
		}
		h(w, r)
	}
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"id": BotID, "username": BotUsername, "is_bot": true})
}

func (s *Server) teams(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []map[string]string{{"id": TeamID, "name": "team"}})
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("team") != TeamID {
		writeError(w, http.StatusNotFound, "app.team.get.missing.app_error", "team not found")
		return
	}
	s.mu.Lock()
	var out []map[string]string
	for id, typ := range s.channels {
		out = append(out, map[string]string{"id": id, "type": typ, "team_id": TeamID})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// postsSince answers GET /channels/{id}/posts?since=ms: the posts created
// or changed after since, as a post list.
func (s *Server) postsSince(w http.ResponseWriter, r *http.Request) {
	ch := r.PathValue("channel")
	since, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "api.context.invalid_url_param.app_error", "since")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[ch]; !ok || s.forbidden[ch] {
		writeError(w, http.StatusForbidden, "api.context.permissions.app_error", "no access to the channel")
		return
	}
	list := map[string]any{"order": []string{}, "posts": map[string]*Post{}}
	var order []string
	posts := map[string]*Post{}
	for i := len(s.posts) - 1; i >= 0; i-- {
		p := s.posts[i]
		if p.ChannelID == ch && (p.CreateAt > since || p.UpdateAt > since) {
			order = append(order, p.ID)
			posts[p.ID] = p
		}
	}
	if order != nil {
		list["order"], list["posts"] = order, posts
	}
	writeJSON(w, http.StatusOK, list)
}

// createPost answers POST /api/v4/posts. A pending_post_id seen within
// the pending TTL returns the post created then, as the server does.
func (s *Server) createPost(w http.ResponseWriter, r *http.Request) {
	var in Post
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil || in.ChannelID == "" {
		writeError(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "post")
		return
	}
	s.mu.Lock()
	if _, ok := s.channels[in.ChannelID]; !ok {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "api.context.permissions.app_error", "no permission to post")
		return
	}
	if s.failPosts > 0 {
		s.failPosts--
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "api.context.server_busy.app_error", "Server is busy")
		return
	}
	if e, ok := s.pending[in.PendingPostID]; ok && in.PendingPostID != "" && time.Since(e.at) < s.pendingTTL {
		p := s.find(e.id)
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, p)
		return
	}
	if ids, _ := json.Marshal(in.FileIDs); len(in.FileIDs) > 0 && len(ids) > PostFileIDsMaxRunes {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "model.post.is_valid.file_ids.app_error", "Invalid file ids.")
		return
	}
	p := s.addLocked(in.ChannelID, BotID, in.Message, in.RootID)
	p.Props, p.PendingPostID = in.Props, in.PendingPostID
	s.attachLocked(p, BotID, in.FileIDs)
	if in.PendingPostID != "" {
		s.pending[in.PendingPostID] = pendingEntry{id: p.ID, at: time.Now()}
	}
	lose := s.loseAnswer > 0
	if lose {
		s.loseAnswer--
	}
	hold := !lose && s.holdAnswer > 0
	if hold {
		s.holdAnswer--
		s.held++
	}
	s.broadcastLocked(p, false)
	s.mu.Unlock()
	if lose {
		// The post exists, but the client never learns it.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
	}
	if hold {
		// The post exists; the answer waits until the client is gone.
		<-r.Context().Done()
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) find(id string) *Post {
	for _, p := range s.posts {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// addLocked stores a new post; create_at is the wall clock in ms, strictly
// increasing. s.mu held.
func (s *Server) addLocked(channel, userID, text, root string) *Post {
	at := time.Now().UnixMilli()
	if at <= s.lastAt {
		at = s.lastAt + 1
	}
	s.lastAt = at
	p := &Post{ID: newID(), CreateAt: at, UpdateAt: at, UserID: userID, ChannelID: channel, RootID: root, Message: text, Props: map[string]any{}}
	s.posts = append(s.posts, p)
	s.notify()
	return p
}

// Post makes user post text in channel (root: the thread, "" for none) and
// sends the posted event to every websocket; it returns the post.
func (s *Server) Post(channel, userID, text, root string) Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.addLocked(channel, userID, text, root)
	s.broadcastLocked(p, false)
	return *p
}

// PostTwice is Post with the posted event sent twice, the way an event is
// seen again after a reconnect.
func (s *Server) PostTwice(channel, userID, text string) Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.addLocked(channel, userID, text, "")
	s.broadcastLocked(p, true)
	return *p
}

// Redeliver sends the posted event of the post id again to every
// websocket, the way an event is seen twice; false if there is no such
// post.
func (s *Server) Redeliver(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(id)
	if p == nil {
		return false
	}
	s.broadcastLocked(p, false)
	return true
}

// Written returns how many events were written to websockets.
func (s *Server) Written() int { return fakeserver.Get(&s.mu, &s.written) }

// broadcastLocked sends the posted event of p to every live websocket.
func (s *Server) broadcastLocked(p *Post, twice bool) {
	pj, _ := json.Marshal(p)
	for c := range s.conns {
		n := 1
		if twice {
			n = 2
		}
		for range n {
			s.seq++
			ev, _ := json.Marshal(map[string]any{
				"event": "posted",
				"data": map[string]any{
					"channel_type": s.channels[p.ChannelID],
					"post":         string(pj),
					"sender_name":  "@" + p.UserID,
					"team_id":      TeamID,
				},
				"broadcast": map[string]any{"channel_id": p.ChannelID},
				"seq":       s.seq,
			})
			select {
			case c.out <- ev:
			default:
				s.t.Logf("mattermosttest: websocket queue full; event dropped")
			}
		}
	}
}

// websocket serves /api/v4/websocket: an authentication_challenge with the
// token, answered {"status":"OK","seq_reply":1}, then a hello event and the
// posted events.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.dialed++
	refuse := s.refuseWS
	s.notify()
	s.mu.Unlock()
	if refuse {
		writeError(w, http.StatusServiceUnavailable, "api.web_socket.connect.upgrade.app_error", "unavailable")
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tcp, _ := r.Context().Value(connKey{}).(*freezeConn)
	c := &conn{ws: ws, out: make(chan []byte, 256), cancel: cancel, tcp: tcp}
	defer ws.CloseNow()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	_, b, err := ws.Read(actx)
	acancel()
	if err != nil {
		return
	}
	var ch struct {
		Seq    int64             `json:"seq"`
		Action string            `json:"action"`
		Data   map[string]string `json:"data"`
	}
	s.mu.Lock()
	ok := json.Unmarshal(b, &ch) == nil && ch.Action == "authentication_challenge" && !s.expired && ch.Data["token"] == s.token
	s.mu.Unlock()
	if !ok {
		reply, _ := json.Marshal(map[string]any{"status": "FAIL", "seq_reply": ch.Seq,
			"error": map[string]any{"id": "api.web_socket_router.not_authenticated.app_error", "message": "not authenticated"}})
		_ = ws.Write(ctx, websocket.MessageText, reply)
		ws.Close(websocket.StatusPolicyViolation, "not authenticated")
		return
	}
	reply, _ := json.Marshal(map[string]any{"status": "OK", "seq_reply": ch.Seq})
	hello, _ := json.Marshal(map[string]any{"event": "hello", "data": map[string]any{"server_version": "10.0.0"}, "seq": 0})
	if ws.Write(ctx, websocket.MessageText, reply) != nil || ws.Write(ctx, websocket.MessageText, hello) != nil {
		return
	}
	s.mu.Lock()
	s.conns[c] = true
	s.all[c] = true
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		delete(s.all, c)
		s.notify()
		s.mu.Unlock()
	}()
	go func() {
		// Reading answers pings.
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				cancel()
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-c.out:
			if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
				return
			}
			s.mu.Lock()
			s.written++
			s.notify()
			s.mu.Unlock()
		}
	}
}

// Connections returns how many websockets are authenticated and open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Dials returns how many websocket handshakes were attempted.
func (s *Server) Dials() int { return fakeserver.Get(&s.mu, &s.dialed) }

// Requests returns how many times "METHOD /path" was called.
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// Disconnect closes every open websocket.
func (s *Server) Disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.ws.Close(websocket.StatusGoingAway, "server restarting")
		delete(s.conns, c)
	}
	s.notify()
}

// RefuseWebsocket makes websocket handshakes fail with 503 (true) or work
// again (false), so that posts are made while no websocket is connected.
func (s *Server) RefuseWebsocket(refuse bool) { fakeserver.Set(&s.mu, &s.refuseWS, refuse) }

// Blackhole makes every open websocket silent: no events, no pongs, no
// reads; it stays open. Later connections work normally.
func (s *Server) Blackhole() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.tcp != nil {
			c.tcp.freeze()
		}
		delete(s.conns, c)
	}
	s.notify()
}

// Expire makes the token invalid: REST answers 401 and the websocket's
// authentication_challenge fails.
func (s *Server) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = true
}

// RateLimit answers the next n REST calls with 429 and the headers
// Retry-After: retryAfter and X-Ratelimit-Reset: reset (each omitted when
// empty).
func (s *Server) RateLimit(n int, retryAfter, reset string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.retryAfter, s.rateReset = n, retryAfter, reset
}

// LoseAnswers makes the next n POST /api/v4/posts create the post and then
// drop the connection without an answer.
func (s *Server) LoseAnswers(n int) { fakeserver.Set(&s.mu, &s.loseAnswer, n) }

// HoldAnswers makes the next n POST /api/v4/posts create the post and
// hold the answer until the client goes away (herald killed mid-send).
func (s *Server) HoldAnswers(n int) { fakeserver.Set(&s.mu, &s.holdAnswer, n) }

// FailPosts makes the next n POST /api/v4/posts answer 503 without
// creating a post.
func (s *Server) FailPosts(n int) { fakeserver.Set(&s.mu, &s.failPosts, n) }

// Held returns how many answers were held so far.
func (s *Server) Held() int { return fakeserver.Get(&s.mu, &s.held) }

// SetPendingTTL sets how long a pending_post_id is remembered (30s, as
// the server does).
func (s *Server) SetPendingTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pendingTTL = d
}

// AddChannel makes the bot a member of channel id of type typ.
func (s *Server) AddChannel(id, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = typ
}

// RemoveChannel makes the bot no longer a member of channel id: it is not
// listed, and its posts and files answer 403.
func (s *Server) RemoveChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.channels, id)
}

// Forbid makes reading channel id's posts answer 403 while it is still
// listed among the bot's channels (the bot left it meanwhile).
func (s *Server) Forbid(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[id] = true
}

// Sent returns the posts the bot made, oldest first.
func (s *Server) Sent() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Post
	for _, p := range s.posts {
		if p.UserID == BotID {
			out = append(out, *p)
		}
	}
	return out
}

// String describes the fake for failure messages.
func (s *Server) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "mattermosttest: %d posts, %d websockets, %d dials", len(s.posts), len(s.conns), s.dialed)
	return b.String()
}
