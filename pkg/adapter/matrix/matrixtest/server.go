// SPDX-License-Identifier: Apache-2.0

package matrixtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// Defaults of a new Server.
const (
	DefaultToken       = "syt_ZmFrZQ_fakeAccessToken_0123"
	DefaultUserID      = "@herald:fake.test"
	DefaultDisplayName = "Herald"
)

// maxPoll caps the timeout of a /sync the fake holds.
const maxPoll = time.Minute

// Event is a room event as the fake stores and serves it.
type Event struct {
	Type           string         `json:"type"`
	EventID        string         `json:"event_id"`
	Sender         string         `json:"sender"`
	StateKey       *string        `json:"state_key,omitempty"`
	OriginServerTS int64          `json:"origin_server_ts"`
	Content        map[string]any `json:"content"`
}

// Sent is one message the adapter sent, as the homeserver stored it.
type Sent struct {
	Room    string
	TxnID   string
	EventID string
	Content map[string]any
}

// Body returns content.body.
func (s Sent) Body() string { b, _ := s.Content["body"].(string); return b }

// Relation returns m.relates_to's rel_type, event_id and m.in_reply_to.
func (s Sent) Relation() (relType, eventID, inReplyTo string) {
	r, _ := s.Content["m.relates_to"].(map[string]any)
	relType, _ = r["rel_type"].(string)
	eventID, _ = r["event_id"].(string)
	if irt, ok := r["m.in_reply_to"].(map[string]any); ok {
		inReplyTo, _ = irt["event_id"].(string)
	}
	return
}

// entry is one position of the fake's stream.
type entry struct {
	room    string
	ev      *Event // a timeline event
	invite  *Event // an invite's m.room.member (stripped state)
	members int    // a summary change
}

// Server is a fake homeserver. All methods are safe for concurrent use.
type Server struct {
	// URL is the homeserver URL for herald.
	URL string
	// Token is the access token accepted until Expire.
	Token       string
	UserID      string
	DisplayName string

	srv  *httptest.Server
	done chan struct{}

	mu         sync.Mutex
	changed    chan struct{}
	log        []entry
	txns       map[string]string // room+txn → event id
	sent       []Sent
	joins      []string
	leaves     []string
	syncs      int
	sinces     []string
	expired    bool
	limits     map[string][]int // endpoint → retry_after_ms of the next answers
	blackhole  int              // /sync calls to hold forever
	blackholed int
	// redeliver: 1 = the next batch with a timeline event is to be served
	// twice, 2 =
	// it was served once, as (lastFrom, lastTo].
	redeliver int
	lastFrom  int
	lastTo    int
	nextID    int
	served    map[string]int // event id → times served by /sync
	holdSends bool           // store a send, then never answer it
	puts      map[string]int // transaction id → sends that carried it
	heldSends int
	media     map[string]*media // media id → file
	uploads   []Upload
	maxUpload int64
	legacy    bool // no authenticated media endpoints (before v1.11)
	noConfig  bool // no media config endpoint at all
	// mediaCalls counts the calls to the media endpoints.
	mediaCalls map[string]int
}

// New starts a fake homeserver on 127.0.0.1, closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	return NewOn(t, net.Listen)
}

// NewOn is New with the listener from listen("tcp", "127.0.0.1:0"): a test
// running herald in another network namespace passes that namespace's
// (systemdbox.Sandbox.Listen).
func NewOn(t testing.TB, listen func(network, address string) (net.Listener, error)) *Server {
	t.Helper()
	s := &Server{Token: DefaultToken, UserID: DefaultUserID, DisplayName: DefaultDisplayName,
		done: make(chan struct{}), changed: make(chan struct{}), txns: map[string]string{}, limits: map[string][]int{}, served: map[string]int{}, puts: map[string]int{},
		media: map[string]*media{}, maxUpload: DefaultMaxUpload}
	ln, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("matrixtest: listen: %v", err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) eventID() string {
	s.nextID++
	return fmt.Sprintf("$ev%d:fake.test", s.nextID)
}

// Push appends a timeline event to room and returns its event id (set if
// empty). Type defaults to m.room.message.
func (s *Server) Push(room string, ev Event) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Type == "" {
		ev.Type = "m.room.message"
	}
	if ev.EventID == "" {
		ev.EventID = s.eventID()
	}
	if ev.OriginServerTS == 0 {
		ev.OriginServerTS = time.Now().UnixMilli()
	}
	s.log = append(s.log, entry{room: room, ev: &ev})
	s.notify()
	return ev.EventID
}

// Text pushes an m.text message from sender and returns its event id.
func (s *Server) Text(room, sender, body string) string {
	return s.Push(room, Event{Sender: sender, Content: map[string]any{"msgtype": "m.text", "body": body}})
}

// Members makes the next batch report room's joined member count.
func (s *Server) Members(room string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, entry{room: room, members: n})
	s.notify()
}

// Invite invites the bot to room on behalf of inviter.
func (s *Server) Invite(room, inviter string, direct bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.UserID
	ev := &Event{Type: "m.room.member", Sender: inviter, StateKey: &key,
		Content: map[string]any{"membership": "invite", "is_direct": direct}}
	s.log = append(s.log, entry{room: room, invite: ev})
	s.notify()
}

// Redeliver makes the next batch with a timeline event be served again to
// the /sync that follows it, as when the answer was lost on the way.
func (s *Server) Redeliver() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redeliver = 1
}

// RateLimit answers the next calls to endpoint ("sync", "send", "join",
// "whoami", "download", "upload", "config") with 429 M_LIMIT_EXCEEDED, one per retry_after_ms given.
func (s *Server) RateLimit(endpoint string, retryAfterMS ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[endpoint] = append(s.limits[endpoint], retryAfterMS...)
}

// Blackhole holds the next /sync forever: no answer, the connection open.
func (s *Server) Blackhole() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blackhole++
}

// HoldSends makes every later send (until HoldSends(false)) store the
// message, so that the room shows it, and then never answer: the sender
// cannot know whether it arrived.
func (s *Server) HoldSends(hold bool) { fakeserver.Set(&s.mu, &s.holdSends, hold) }

// Puts returns how many sends carried the transaction id, the
// deduplicated repeats included.
func (s *Server) Puts(txn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts[txn]
}

// HeldSends returns how many sends were stored and left unanswered.
func (s *Server) HeldSends() int { return fakeserver.Get(&s.mu, &s.heldSends) }

// Expire makes the access token unknown: every call gets 401
// M_UNKNOWN_TOKEN.
func (s *Server) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = true
	s.notify()
}

// Sent returns the messages sent so far, deduplicated by transaction id.
func (s *Server) Sent() []Sent { return fakeserver.Copy(&s.mu, &s.sent) }

// Replies returns the messages sent in reply to the event id (its
// m.in_reply_to, threads included), as the user sees them.
func (s *Server) Replies(id string) []Sent {
	var out []Sent
	for _, m := range s.Sent() {
		if _, _, reply := m.Relation(); reply == id {
			out = append(out, m)
		}
	}
	return out
}

// Joins and Leaves return the rooms joined and left, in order.
func (s *Server) Joins() []string { return fakeserver.Copy(&s.mu, &s.joins) }

func (s *Server) Leaves() []string { return fakeserver.Copy(&s.mu, &s.leaves) }

// Syncs returns how many /sync calls were answered or held.
func (s *Server) Syncs() int { return fakeserver.Get(&s.mu, &s.syncs) }

// Served returns how many /sync answers carried the event id.
func (s *Server) Served(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[id]
}

// Blackholed returns how many /sync calls are held forever.
func (s *Server) Blackholed() int { return fakeserver.Get(&s.mu, &s.blackholed) }

// Since returns the since parameters of the /sync calls so far ("" for an
// initial sync).
func (s *Server) Since() []string { return fakeserver.Copy(&s.mu, &s.sinces) }

// InitialSyncs returns how many /sync calls came without since: a client
// that resumes from a saved token makes one in its whole life.
func (s *Server) InitialSyncs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, since := range s.sinces {
		if since == "" {
			n++
		}
	}
	return n
}

// Position returns the token of the newest position of the stream: a
// /sync with this since has seen everything pushed so far.
func (s *Server) Position() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "s" + strconv.Itoa(len(s.log))
}

// Wait polls cond until it holds, failing the test after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.Within(t, timeout, "matrixtest: "+what, cond)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errcode": code, "error": msg})
}

const prefix = "/_matrix/client/v3/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.serveMedia(w, r) {
		return
	}
	path := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
	if path == r.URL.EscapedPath() {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unknown endpoint")
		return
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "bad path")
			return
		}
		parts[i] = u
	}
	endpoint := ""
	switch {
	case r.Method == http.MethodGet && path == "account/whoami":
		endpoint = "whoami"
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "profile" && parts[2] == "displayname":
		endpoint = "profile"
	case r.Method == http.MethodGet && path == "sync":
		endpoint = "sync"
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "join":
		endpoint = "join"
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "rooms" && parts[2] == "leave":
		endpoint = "leave"
	case r.Method == http.MethodPut && len(parts) == 5 && parts[0] == "rooms" && parts[2] == "send":
		endpoint = "send"
	default:
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unknown endpoint")
		return
	}
	if !s.admit(w, r, endpoint) {
		return
	}
	switch endpoint {
	case "whoami":
		writeJSON(w, http.StatusOK, map[string]any{"user_id": s.UserID, "device_id": "FAKEDEVICE"})
	case "profile":
		if parts[1] != s.UserID {
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Profile was not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"displayname": s.DisplayName})
	case "sync":
		s.sync(w, r)
	case "join":
		s.mu.Lock()
		s.joins = append(s.joins, parts[1])
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"room_id": parts[1]})
	case "leave":
		s.mu.Lock()
		s.leaves = append(s.leaves, parts[1])
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{})
	case "send":
		s.send(w, r, parts[1], parts[3], parts[4])
	}
}

// admit checks the access token and the rate limit of endpoint, and
// answers the call when either refuses it.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	s.mu.Lock()
	switch {
	case r.Header.Get("Authorization") == "":
		s.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
		return false
	case s.expired || r.Header.Get("Authorization") != "Bearer "+s.Token:
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token", "soft_logout": false})
		return false
	}
	if l := s.limits[endpoint]; len(l) > 0 {
		s.limits[endpoint] = l[1:]
		s.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": l[0]})
		return false
	}
	s.mu.Unlock()
	return true
}

func (s *Server) send(w http.ResponseWriter, r *http.Request, room, typ, txn string) {
	var content map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&content); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "Content not JSON.")
		return
	}
	if typ != "m.room.message" {
		writeError(w, http.StatusBadRequest, "M_UNRECOGNIZED", "the fake stores m.room.message only")
		return
	}
	if !strings.HasPrefix(room, "!") {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "User not in room")
		return
	}
	s.mu.Lock()
	// Transaction ids are scoped to the access token (one device here).
	key := room + "\x00" + txn
	s.puts[txn]++
	id, ok := s.txns[key]
	if !ok {
		ev := &Event{Type: typ, EventID: s.eventID(), Sender: s.UserID, OriginServerTS: time.Now().UnixMilli(), Content: content}
		id = ev.EventID
		s.txns[key] = id
		s.sent = append(s.sent, Sent{Room: room, TxnID: txn, EventID: id, Content: content})
		s.log = append(s.log, entry{room: room, ev: ev})
		s.notify()
	}
	hold := s.holdSends
	if hold {
		s.heldSends++
	}
	s.mu.Unlock()
	if hold {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_id": id})
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var filter struct {
		Room struct {
			Timeline struct {
				Types *[]string `json:"types"`
			} `json:"timeline"`
		} `json:"room"`
	}
	if q.Get("filter") == "" || json.Unmarshal([]byte(q.Get("filter")), &filter) != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "the fake expects a filter (inline JSON)")
		return
	}
	wanted := func(typ string) bool {
		if filter.Room.Timeline.Types == nil {
			return true
		}
		for _, t := range *filter.Room.Timeline.Types {
			if t == typ {
				return true
			}
		}
		return false
	}
	timeout, err := strconv.Atoi(q.Get("timeout"))
	if err != nil || timeout < 0 {
		timeout = 0
	}
	wait := min(time.Duration(timeout)*time.Millisecond, maxPoll)
	since := q.Get("since")
	from := 0
	if since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(since, "s"))
		if !strings.HasPrefix(since, "s") || err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "bad since token")
			return
		}
		from = n
	}
	s.mu.Lock()
	s.syncs++
	s.sinces = append(s.sinces, since)
	if s.blackhole > 0 {
		s.blackhole--
		s.blackholed++
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if since != "" && s.redeliver == 2 && from == s.lastTo {
		s.redeliver = 0
		from = s.lastFrom
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for since != "" && from >= len(s.log) && !s.expired {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			writeJSON(w, http.StatusOK, map[string]any{"next_batch": "s" + strconv.Itoa(len(s.log))})
			s.mu.Unlock()
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if s.expired {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token", "soft_logout": false})
		return
	}
	if from > len(s.log) {
		from = len(s.log)
	}
	to := len(s.log)
	join := map[string]map[string]any{}
	invite := map[string]any{}
	room := func(id string) map[string]any {
		if join[id] == nil {
			join[id] = map[string]any{"timeline": map[string]any{"events": []any{}, "limited": false},
				"state": map[string]any{"events": []any{}}}
		}
		return join[id]
	}
	for _, e := range s.log[from:to] {
		switch {
		case e.ev != nil && !wanted(e.ev.Type):
			// The filter leaves it out, as a homeserver's does.
		case e.ev != nil:
			tl := room(e.room)["timeline"].(map[string]any)
			tl["events"] = append(tl["events"].([]any), e.ev)
			s.served[e.ev.EventID]++
		case e.invite != nil:
			invite[e.room] = map[string]any{"invite_state": map[string]any{"events": []any{e.invite}}}
		case e.members > 0:
			room(e.room)["summary"] = map[string]any{"m.joined_member_count": e.members}
		}
	}
	if since != "" && s.redeliver == 1 && len(join) > 0 {
		for _, e := range s.log[from:to] {
			if e.ev != nil {
				s.redeliver, s.lastFrom, s.lastTo = 2, from, to
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"next_batch": "s" + strconv.Itoa(to),
		"rooms":      map[string]any{"join": join, "invite": invite, "leave": map[string]any{}},
	})
}
