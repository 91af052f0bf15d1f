// SPDX-License-Identifier: Apache-2.0

package signaltest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// Kept is how many events the fake keeps for Last-Event-ID, as signal-cli.
const Kept = 1000

// DefaultKeepAlive is signal-cli's keepalive interval on the event stream.
const DefaultKeepAlive = 15 * time.Second

// Envelope is one received message, written as signal-cli writes it.
type Envelope struct {
	Source, SourceNumber, SourceUUID, SourceName string
	Timestamp                                    int64
	// Text is dataMessage.message; NoData sends an envelope without
	// dataMessage (a receipt).
	Text   string
	NoData bool
	// GroupID makes it a group message (dataMessage.groupInfo).
	GroupID string
	// Attachments go in dataMessage.attachments and the daemon's store.
	Attachments []Attachment
	// Extra adds fields to dataMessage: "sticker", "reaction",
	// "contacts", "remoteDelete" …
	Extra map[string]any
}

// JSON returns the event data signal-cli writes for e for account.
func (e Envelope) JSON(account string) string {
	env := map[string]any{
		"source": e.Source, "sourceNumber": nullable(e.SourceNumber), "sourceUuid": e.SourceUUID,
		"sourceName": e.SourceName, "sourceDevice": 1, "timestamp": e.Timestamp,
		"serverReceivedTimestamp": e.Timestamp + 5, "serverDeliveredTimestamp": e.Timestamp + 6,
	}
	if e.NoData {
		env["receiptMessage"] = map[string]any{"when": e.Timestamp + 10, "isDelivery": true, "timestamps": []int64{e.Timestamp - 1}}
	} else {
		dm := map[string]any{"timestamp": e.Timestamp, "message": e.Text, "expiresInSeconds": 0, "viewOnce": false}
		if e.Text == "" {
			dm["message"] = nil
		}
		for _, a := range e.Attachments {
			atts, _ := dm["attachments"].([]map[string]any)
			dm["attachments"] = append(atts, a.json())
		}
		for k, v := range e.Extra {
			dm[k] = v
		}
		if e.GroupID != "" {
			dm["groupInfo"] = map[string]any{"groupId": e.GroupID, "groupName": "g", "revision": 3, "type": "DELIVER"}
		}
		env["dataMessage"] = dm
	}
	b, _ := json.Marshal(map[string]any{"envelope": env, "account": account})
	return string(b)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Sent is one send request the fake accepted.
type Sent struct {
	Recipient      []string
	GroupID        string
	Message        string
	Account        string
	QuoteTimestamp int64
	QuoteAuthor    string
	// Mention and TextStyle are the ranges sent, if any.
	Mention   []string
	TextStyle []string
	Timestamp int64
	// Attachments are the files sent, decoded.
	Attachments []SentAttachment
}

// Reply scripts the answer to one send.
type Reply struct {
	// Code and Message, if Code is set, answer with a JSON-RPC error.
	Code    int
	Message string
	// Results, if set, replaces the per-recipient results ("SUCCESS",
	// "RATE_LIMIT_FAILURE", …) of a successful answer.
	Results []string
	// RetryAfter is retryAfterSeconds of RATE_LIMIT_FAILURE results (with a
	// proof token), 0 for none.
	RetryAfter int64
	// Status, if set, answers with this HTTP status and no body.
	Status int
	// Hang holds the request until the client goes away; nothing is sent.
	Hang bool
	// Hold sends the message (the user sees it), then holds the answer
	// until the client goes away: the outcome is unknown to the client.
	Hold bool
}

type event struct {
	seq  int64
	data string
}

// Server is one fake daemon.
type Server struct {
	// URL is the daemon's base URL, http://127.0.0.1:<port>.
	URL string
	// Account is the account it serves; a stream asking for another one
	// is answered 400, as by a multi-account daemon.
	Account string

	t      testing.TB
	listen func(network, address string) (net.Listener, error)
	addr   string
	mu     sync.Mutex
	srv    *http.Server
	served chan struct{}

	keepAlive  time.Duration
	prefix     string
	next       int64
	events     []event
	streams    map[chan event]struct{}
	blackholed bool
	dropped    int
	keepalives int
	written    int
	held       int
	opened     int
	lastIDs    []string
	sent       []Sent
	script     []Reply
	sends      int
	clock      int64
	files      map[string]Attachment
	fetches    int
}

// New starts a fake on 127.0.0.1 serving account; it stops with the test.
func New(t testing.TB, account string) *Server { return NewOn(t, net.Listen, account) }

// NewOn is New with the listen function of another network namespace
// (systemdbox.Sandbox.Listen), so that a herald in that namespace reaches it
// on its 127.0.0.1.
func NewOn(t testing.TB, listen func(network, address string) (net.Listener, error), account string) *Server {
	t.Helper()
	s := &Server{t: t, Account: account, keepAlive: DefaultKeepAlive, streams: map[chan event]struct{}{}, clock: 1700000000000, listen: listen}
	s.prefix = strconv.FormatInt(time.Now().UnixMilli(), 10) + "-"
	l, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.URL = "http://" + s.addr
	s.serve(l)
	t.Cleanup(s.Down)
	return s
}

// SetKeepAlive changes the keepalive interval of streams opened later.
func (s *Server) SetKeepAlive(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepAlive = d
}

func (s *Server) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/events", s.handleEvents)
	mux.HandleFunc("/api/v1/rpc", s.handleRPC)
	mux.HandleFunc("/api/v1/check", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.served = srv, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
}

// Down stops the daemon: open streams end, new connections are refused.
func (s *Server) Down() {
	s.mu.Lock()
	srv, done := s.srv, s.served
	s.srv = nil
	for ch := range s.streams {
		close(ch)
		delete(s.streams, ch)
	}
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Up starts a stopped daemon again on the same address, keeping its
// events (the process did not restart; see Restart).
func (s *Server) Up() {
	s.t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = s.listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("signaltest: listen again on %s: %v", s.addr, err)
	}
	s.serve(l)
}

// Restart is a restarted daemon: the kept events are gone and ids start
// again under a new prefix, so an old Last-Event-ID is unknown.
func (s *Server) Restart() {
	s.Down()
	s.mu.Lock()
	s.prefix = strconv.FormatInt(time.Now().UnixNano(), 10) + "-"
	s.events, s.next = nil, 0
	s.blackholed = false
	s.mu.Unlock()
	s.Up()
}

// Push makes the daemon receive e and returns its event id.
func (s *Server) Push(e Envelope) string {
	s.store(e.Attachments)
	return s.PushRaw(e.JSON(s.Account))
}

// Message returns a direct text message from +15550001 with a fresh
// timestamp.
func (s *Server) Message(text string) Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock++
	return Envelope{Source: "+15550001", SourceNumber: "+15550001", SourceUUID: "a7b1c2d3-0000-4000-8000-000000000001",
		SourceName: "Ann", Timestamp: s.clock, Text: text}
}

// PushRaw makes the daemon write data as one receive event and returns its
// id. Pushing the same envelope twice is how a replay looks.
func (s *Server) PushRaw(data string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	ev := event{seq: s.next, data: data}
	s.events = append(s.events, ev)
	if len(s.events) > Kept {
		s.events = s.events[1:]
	}
	for ch := range s.streams {
		select {
		case ch <- ev:
		default:
			// A client too slow for 1000 events loses its stream.
			close(ch)
			delete(s.streams, ch)
		}
	}
	return s.prefix + strconv.FormatInt(ev.seq, 10)
}

// Blackhole makes open and later streams fall silent (no event, no
// keepalive) while staying open: events are swallowed (see Dropped), as
// by a network that loses everything.
func (s *Server) Blackhole() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blackholed = true
}

// Unblackhole ends Blackhole for streams opened later.
func (s *Server) Unblackhole() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blackholed = false
}

// Opened is how many event streams were opened (answered 200).
func (s *Server) Opened() int { return fakeserver.Get(&s.mu, &s.opened) }

// LastEventIDs lists the Last-Event-ID header of every stream request, ""
// when absent.
func (s *Server) LastEventIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastIDs...)
}

// Script queues answers for the next sends; once used up, sends succeed.
func (s *Server) Script(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, r...)
}

// Sent lists the sends that succeeded.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Sends counts send requests, answered or not.
func (s *Server) Sends() int { return fakeserver.Get(&s.mu, &s.sends) }

// Wait polls cond until it holds, failing the test after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.Within(t, timeout, "signaltest: "+what, cond)
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/events" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if acc := r.URL.Query().Get("account"); acc != "" && acc != s.Account {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	ch := make(chan event, Kept)
	s.mu.Lock()
	last, has := r.Header.Get("Last-Event-ID"), len(r.Header.Values("Last-Event-ID")) > 0
	s.lastIDs = append(s.lastIDs, last)
	if has {
		var after int64 // an unknown id sends every kept event
		if rest, ok := strings.CutPrefix(last, s.prefix); ok {
			after, _ = strconv.ParseInt(rest, 10, 64)
		}
		for _, ev := range s.events {
			if ev.seq > after {
				ch <- ev
			}
		}
	}
	s.streams[ch] = struct{}{}
	s.opened++
	prefix, keepAlive := s.prefix, s.keepAlive
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, ch)
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if s.drop() {
				continue
			}
			if _, err := fmt.Fprintf(w, "id:%s%d\nevent:receive\ndata:%s\n\n", prefix, ev.seq, ev.data); err != nil {
				return
			}
			fl.Flush()
			s.mu.Lock()
			s.written++
			s.mu.Unlock()
		case <-tick.C:
			if s.isBlackholed() {
				continue
			}
			if _, err := io.WriteString(w, ":\n"); err != nil {
				return
			}
			s.mu.Lock()
			s.keepalives++
			s.mu.Unlock()
		}
		fl.Flush()
	}
}

// drop reports whether the stream is blackholed, counting the event it
// then swallows.
func (s *Server) drop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blackholed {
		s.dropped++
	}
	return s.blackholed
}

// Written counts the events written to streams.
func (s *Server) Written() int { return fakeserver.Get(&s.mu, &s.written) }

// Held counts the sends whose answer is held (Reply.Hold) right now.
func (s *Server) Held() int { return fakeserver.Get(&s.mu, &s.held) }

// KeepAlives counts the keepalive lines written.
func (s *Server) KeepAlives() int { return fakeserver.Get(&s.mu, &s.keepalives) }

// Dropped counts the events blackholed streams swallowed.
func (s *Server) Dropped() int { return fakeserver.Get(&s.mu, &s.dropped) }

func (s *Server) isBlackholed() bool { return fakeserver.Get(&s.mu, &s.blackholed) }

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

type sendParams struct {
	Recipient      []string `json:"recipient"`
	GroupID        string   `json:"groupId"`
	Message        string   `json:"message"`
	Account        string   `json:"account"`
	QuoteTimestamp int64    `json:"quoteTimestamp"`
	QuoteAuthor    string   `json:"quoteAuthor"`
	Mention        []string `json:"mention"`
	TextStyle      []string `json:"textStyle"`
	Attachments    []string `json:"attachments"`
}

func (s *Server) handleRPC(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/rpc" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > MaxRequest {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, MaxRequest)).Decode(&req); err != nil {
		writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32700, "message": err.Error()}})
		return
	}
	if req.Method == "getAttachment" {
		s.getAttachment(w, r, req)
		return
	}
	if req.Method != "send" {
		rpcErr(w, req.ID, -32601, "Method not implemented")
		return
	}
	var p sendParams
	if err := json.Unmarshal(req.Params, &p); err != nil {
		rpcErr(w, req.ID, -32600, err.Error())
		return
	}
	s.mu.Lock()
	s.sends++
	var reply Reply
	if len(s.script) > 0 {
		reply, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	switch {
	case reply.Hang:
		<-r.Context().Done()
		return
	case reply.Status != 0:
		w.WriteHeader(reply.Status)
		return
	case reply.Code != 0:
		rpcErr(w, req.ID, reply.Code, reply.Message)
		return
	}
	if p.Account != "" && p.Account != s.Account {
		rpcErr(w, req.ID, -32602, "Specified account does not exist")
		return
	}
	atts, err := decodeAttachments(p.Attachments)
	switch {
	case errors.Is(err, errAttachmentTooLarge):
		rpcErr(w, req.ID, -1, "Attachment too large")
		return
	case err != nil:
		rpcErr(w, req.ID, -1, "Invalid attachment: "+err.Error())
		return
	}
	if p.Message == "" && len(atts) == 0 {
		rpcErr(w, req.ID, -1, "Sending empty message is not allowed, either a message, attachment or sticker must be given.")
		return
	}
	if (len(p.Recipient) == 0) == (p.GroupID == "") {
		rpcErr(w, req.ID, -1, "No recipients given")
		return
	}
	s.mu.Lock()
	s.clock++
	ts := s.clock
	s.mu.Unlock()
	types := reply.Results
	if types == nil {
		types = []string{"SUCCESS"}
	}
	results := make([]map[string]any, 0, len(types))
	for i, typ := range types {
		res := map[string]any{"recipientAddress": map[string]any{"uuid": fmt.Sprintf("0000000%d-0000-4000-8000-000000000000", i), "number": nil}, "type": typ}
		if p.GroupID != "" {
			res["groupId"] = p.GroupID
		}
		if typ == "RATE_LIMIT_FAILURE" && reply.RetryAfter > 0 {
			res["token"] = "challenge-token"
			res["retryAfterSeconds"] = reply.RetryAfter
		}
		results = append(results, res)
	}
	ok := false
	for _, typ := range types {
		ok = ok || typ == "SUCCESS"
	}
	if ok {
		s.mu.Lock()
		s.sent = append(s.sent, Sent{Recipient: p.Recipient, GroupID: p.GroupID, Message: p.Message, Account: p.Account,
			QuoteTimestamp: p.QuoteTimestamp, QuoteAuthor: p.QuoteAuthor, Mention: p.Mention, TextStyle: p.TextStyle, Timestamp: ts,
			Attachments: atts})
		if reply.Hold {
			s.held++
		}
		s.mu.Unlock()
	}
	if reply.Hold {
		<-r.Context().Done()
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
		return
	}
	writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": map[string]any{"timestamp": ts, "results": results}})
}

func rpcErr(w http.ResponseWriter, id json.RawMessage, code int, msg string) {
	writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg, "data": nil}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
