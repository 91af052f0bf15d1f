// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// DefaultToken is a well-formed token for tests that need no particular one.
const DefaultToken = "123456:TEST-fake-token_0123456789"

// MaxTextUnits is Telegram's text limit in UTF-16 code units.
const MaxTextUnits = 4096

// maxBody bounds a request body the fake reads.
const maxBody = 8 << 20

// closeWait bounds how long Close waits for handlers to return.
const closeWait = 5 * time.Second

type queued struct {
	id  int64
	raw json.RawMessage
	// kind is the update's type, the name of its field besides update_id
	// (message, callback_query, ...).
	kind string
}

// updateKind returns the name of the first field of raw other than
// update_id, "" if there is none.
func updateKind(raw json.RawMessage) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return ""
	}
	for k := range fields {
		if k != "update_id" {
			return k
		}
	}
	return ""
}

// Server is a fake Bot API. Create it with New; its URL is the api_url for
// herald. All methods are safe for concurrent use.
type Server struct {
	// URL is http://127.0.0.1:<port>, without a trailing slash.
	URL string
	// Token is the only token the server accepts (others get 401).
	Token string
	// Bot is what getMe returns.
	Bot User

	addr   string
	listen func(network, address string) (net.Listener, error)
	closed chan struct{}
	once   sync.Once

	mu          sync.Mutex
	changes     fakeserver.Changes // notified on every change
	srv         *http.Server
	down        chan struct{} // closed by Refuse for the serving generation
	serveDone   chan struct{}
	active      int // handlers running
	idle        chan struct{}
	queue       []queued
	nextUpdate  int64
	nextMessage int64
	confirmed   int64
	negative    bool
	requests    []Request
	scripts     map[string][]Reply
	always      map[string]Reply
	sent        []*SentMessage
	held        int
	blackholed  int
	// polling counts the getUpdates calls being answered now per client
	// (see ClientHeader), and maxPollers is the most clients that ever
	// polled at once: Telegram allows one poller per bot and ends an older
	// poll with 409 when a newer comes.
	polling    map[string]int
	maxPollers int
	poll       chan struct{} // closing it terminates the held poll with 409
	files      map[string]*storedFile
	uploads    []Upload
	// allowed is the last allowed_updates given to getUpdates, which
	// Telegram keeps until it is given again; nil lets every kind through.
	allowed []string
	// callbacks are the callback query ids pushed, answered or not.
	callbacks    map[string]bool
	nextCallback int
}

// New starts a fake on 127.0.0.1 accepting token (DefaultToken if empty)
// and closes it when the test ends.
func New(t testing.TB, token string) *Server {
	t.Helper()
	return NewOn(t, net.Listen, token)
}

// NewOn is New with the server's listeners (the first one and those of
// Accept) opened by listen: a test serving herald in another network
// namespace passes that namespace's (systemdbox.Sandbox.Listen).
func NewOn(t testing.TB, listen func(network, address string) (net.Listener, error), token string) *Server {
	t.Helper()
	if token == "" {
		token = DefaultToken
	}
	ln := fakeserver.Listen(t, "telegramtest", listen)
	s := &Server{
		listen:      listen,
		Token:       token,
		Bot:         User{ID: 42, IsBot: true, FirstName: "gw", Username: "gw_bot"},
		addr:        ln.Addr().String(),
		closed:      make(chan struct{}),
		nextUpdate:  1000,
		nextMessage: 0,
		scripts:     map[string][]Reply{},
		always:      map[string]Reply{},
	}
	s.URL = "http://" + s.addr
	s.serve(ln)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.down, s.serveDone = srv, make(chan struct{}), done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// Refuse takes the listener down: open connections are closed and new ones
// are refused until Accept.
func (s *Server) Refuse() {
	s.mu.Lock()
	srv, down, done := s.srv, s.down, s.serveDone
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	close(down)
	_ = srv.Close()
	<-done
}

// Accept listens again on the same address after Refuse.
func (s *Server) Accept() error {
	s.mu.Lock()
	up := s.srv != nil
	s.mu.Unlock()
	select {
	case <-s.closed:
		return errors.New("telegramtest: server closed")
	default:
	}
	if up {
		return nil
	}
	ln, err := s.listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.serve(ln)
	return nil
}

// Close stops the server. Held and blackholed requests end at once; Close
// waits at most a few seconds for handlers to return.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.Refuse()
		s.mu.Lock()
		var idle chan struct{}
		if s.active > 0 {
			s.idle = make(chan struct{})
			idle = s.idle
		}
		s.mu.Unlock()
		if idle != nil {
			select {
			case <-idle:
			case <-time.After(closeWait):
			}
		}
	})
}

func (s *Server) enter() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
}

func (s *Server) leave() {
	s.mu.Lock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// notifyLocked wakes everyone waiting for a change.
func (s *Server) notifyLocked() { s.changes.Notify() }

// ServeHTTP implements the Bot API routes: /bot<token>/<method>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.enter()
	defer s.leave()
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		s.download(w, r, rest)
		return
	}
	if r.ContentLength > MaxUpload {
		writeReply(w, Error(413, "Request Entity Too Large"))
		return
	}
	params, enc, parts, perr := parseParams(r)
	// Drain whatever is left so that net/http watches the connection and
	// cancels r.Context() when the client goes away.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))

	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || method == "" || strings.Contains(method, "/") {
		writeReply(w, NotFound())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: method, Params: params, Encoding: enc, At: time.Now()})
	reply, scripted := s.nextScriptLocked(method)
	s.notifyLocked()
	down := s.down
	s.mu.Unlock()

	if scripted && reply != (Reply{}) && !reply.Hold {
		s.apply(w, r, reply, down)
		return
	}
	if token != s.Token {
		writeReply(w, Unauthorized())
		return
	}
	if perr != nil {
		writeReply(w, Error(400, "Bad Request: "+perr.Error()))
		return
	}
	switch method {
	case "sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo":
		s.upload(w, method, params, parts)
	case "getMe":
		writeOK(w, s.Bot)
	case "getFile":
		s.getFile(w, params)
	case "getUpdates":
		s.getUpdates(w, r, params, down)
	case "sendMessage":
		if !s.sendMessage(w, params, reply.Hold) {
			return
		}
		s.apply(w, r, Reply{Blackhole: true}, down)
	case "editMessageText":
		s.editMessageText(w, params)
	case "answerCallbackQuery":
		s.answerCallbackQuery(w, params)
	case "sendChatAction":
		if params.Get("chat_id") == "" {
			writeReply(w, Error(400, "Bad Request: chat_id is empty"))
			return
		}
		writeOK(w, true)
	default:
		writeReply(w, NotFound())
	}
}

func (s *Server) nextScriptLocked(method string) (Reply, bool) {
	if q := s.scripts[method]; len(q) > 0 {
		s.scripts[method] = q[1:]
		return q[0], true
	}
	r, ok := s.always[method]
	return r, ok
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, reply Reply, down chan struct{}) {
	switch {
	case reply.Abort:
		fakeserver.DropConn(w)
	case reply.Blackhole:
		s.mu.Lock()
		s.blackholed++
		s.notifyLocked()
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-down:
			fakeserver.DropConn(w)
		case <-s.closed:
			fakeserver.DropConn(w)
		}
		s.mu.Lock()
		s.blackholed--
		s.notifyLocked()
		s.mu.Unlock()
	default:
		writeReply(w, reply)
	}
}

func writeReply(w http.ResponseWriter, r Reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.Status)
	_, _ = io.WriteString(w, r.Body)
}

func writeOK(w http.ResponseWriter, result any) {
	b, err := json.Marshal(map[string]any{"ok": true, "result": result})
	if err != nil {
		writeReply(w, Error(500, "Internal Server Error"))
		return
	}
	writeReply(w, Reply{Status: 200, Body: string(b)})
}

// parseParams reads query, JSON, form and multipart parameters.
func parseParams(r *http.Request) (Params, string, []filePart, error) {
	var parts []filePart
	p := Params{}
	for k, vs := range r.URL.Query() {
		p[k] = vs[0]
	}
	enc := "query"
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		enc = "json"
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			return p, enc, nil, err
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return p, enc, nil, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return p, enc, nil, errors.New("can't parse JSON object")
		}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				p[k] = str
			} else {
				p[k] = string(v)
			}
		}
	case "application/x-www-form-urlencoded":
		enc = "form"
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return p, enc, nil, err
		}
		for k, vs := range r.PostForm {
			p[k] = vs[0]
		}
	case "multipart/form-data":
		enc = "multipart"
		if err := r.ParseMultipartForm(maxBody); err != nil {
			return p, enc, nil, err
		}
		for k, vs := range r.MultipartForm.Value {
			p[k] = vs[0]
		}
		parts = readFileParts(r.MultipartForm)
		_ = r.MultipartForm.RemoveAll()
	}
	return p, enc, parts, nil
}

func (s *Server) getUpdates(w http.ResponseWriter, r *http.Request, p Params, down chan struct{}) {
	offset := p.Int("offset")
	limit := int(p.Int("limit"))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout := time.Duration(p.Int("timeout")) * time.Second
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	client := r.Header.Get(ClientHeader)
	if client == "" {
		client = r.RemoteAddr
	}
	s.mu.Lock()
	if s.polling == nil {
		s.polling = map[string]int{}
	}
	s.polling[client]++
	s.maxPollers = max(s.maxPollers, len(s.polling))
	defer func() {
		s.mu.Lock()
		if s.polling[client]--; s.polling[client] == 0 {
			delete(s.polling, client)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()
	if p.Has("allowed_updates") {
		var kinds []string
		if err := p.Decode("allowed_updates", &kinds); err != nil {
			s.mu.Unlock()
			writeReply(w, Error(400, "Bad Request: can't parse allowed updates"))
			return
		}
		s.allowed = kinds
	}
	s.confirmLocked(offset)
	if s.poll != nil {
		close(s.poll) // Telegram ends the older poll with 409
	}
	term := make(chan struct{})
	s.poll = term
	defer func() {
		s.mu.Lock()
		if s.poll == term {
			s.poll = nil
		}
		s.mu.Unlock()
	}()
	for {
		ups := s.pendingLocked(offset, limit)
		if len(ups) > 0 || timeout <= 0 {
			s.mu.Unlock()
			writeOK(w, ups)
			return
		}
		s.held++
		s.notifyLocked()
		ch := s.changes.C()
		s.mu.Unlock()
		var end func()
		select {
		case <-ch:
		case <-timer.C:
			end = func() { writeOK(w, []json.RawMessage{}) }
		case <-term:
			end = func() { writeReply(w, Conflict()) }
		case <-r.Context().Done():
			end = func() {}
		case <-down:
			end = func() { fakeserver.DropConn(w) }
		case <-s.closed:
			end = func() { fakeserver.DropConn(w) }
		}
		s.mu.Lock()
		s.held--
		s.notifyLocked()
		if end != nil {
			s.mu.Unlock()
			end()
			return
		}
	}
}

// confirmLocked forgets updates the way Telegram does: a positive offset
// confirms every update below it, a negative one keeps only the last
// -offset updates.
func (s *Server) confirmLocked(offset int64) {
	switch {
	case offset > 0:
		i := sort.Search(len(s.queue), func(i int) bool { return s.queue[i].id >= offset })
		s.queue = s.queue[i:]
		if offset > s.confirmed {
			s.confirmed = offset
		}
	case offset < 0:
		s.negative = true
		if keep := int(-offset); keep < len(s.queue) {
			s.queue = s.queue[len(s.queue)-keep:]
		}
		if len(s.queue) > 0 && s.queue[0].id > s.confirmed {
			s.confirmed = s.queue[0].id
		}
	}
}

func (s *Server) pendingLocked(offset int64, limit int) []json.RawMessage {
	var out []json.RawMessage
	for _, q := range s.queue {
		if len(s.allowed) > 0 && !slices.Contains(s.allowed, q.kind) {
			continue // Telegram never delivers it
		}
		if q.id >= offset && len(out) < limit {
			out = append(out, q.raw)
		}
	}
	return out
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

// sendMessage creates the message and answers, or with hold creates it and
// returns true without answering.
func (s *Server) sendMessage(w http.ResponseWriter, p Params, hold bool) bool {
	chat := p.Get("chat_id")
	text := p.Get("text")
	switch {
	case chat == "":
		writeReply(w, Error(400, "Bad Request: chat_id is empty"))
		return false
	case strings.TrimSpace(text) == "":
		writeReply(w, Error(400, TextEmpty))
		return false
	case utf16Len(text) > MaxTextUnits:
		writeReply(w, TooLong())
		return false
	}
	sm := &SentMessage{ChatID: chat, Text: text, ThreadID: p.Int("message_thread_id")}
	if p.Has("reply_markup") {
		var rm struct {
			InlineKeyboard [][]InlineButton `json:"inline_keyboard"`
		}
		if err := p.Decode("reply_markup", &rm); err != nil {
			writeReply(w, Error(400, "Bad Request: can't parse reply keyboard markup JSON object"))
			return false
		}
		for _, row := range rm.InlineKeyboard {
			for _, b := range row {
				if b.CallbackData == "" || len(b.CallbackData) > MaxCallbackData {
					writeReply(w, Error(400, "Bad Request: BUTTON_DATA_INVALID"))
					return false
				}
				sm.Buttons = append(sm.Buttons, b)
			}
		}
	}
	if p.Has("reply_parameters") {
		var rp struct {
			MessageID                int64 `json:"message_id"`
			AllowSendingWithoutReply bool  `json:"allow_sending_without_reply"`
		}
		if err := p.Decode("reply_parameters", &rp); err != nil {
			writeReply(w, Error(400, "Bad Request: can't parse reply parameters JSON object"))
			return false
		}
		sm.ReplyTo, sm.AllowSendingWithoutReply = rp.MessageID, rp.AllowSendingWithoutReply
	} else {
		sm.ReplyTo = p.Int("reply_to_message_id")
	}
	s.mu.Lock()
	s.nextMessage++
	sm.MessageID = s.nextMessage
	s.sent = append(s.sent, sm)
	s.notifyLocked()
	res := s.resultLocked(sm)
	s.mu.Unlock()
	if hold {
		return true
	}
	writeOK(w, res)
	return false
}

func (s *Server) resultLocked(sm *SentMessage) Message {
	id, _ := strconv.ParseInt(sm.ChatID, 10, 64)
	return Message{
		MessageID:       sm.MessageID,
		MessageThreadID: sm.ThreadID,
		From:            &s.Bot,
		Chat:            Chat{ID: id, Type: "private"},
		Date:            time.Now().Unix(),
		Text:            sm.Text,
	}
}

// answerCallbackQuery accepts an answer to a callback query pushed with
// PushCallback; an unknown id gets Telegram's 400.
func (s *Server) answerCallbackQuery(w http.ResponseWriter, p Params) {
	s.mu.Lock()
	known := s.callbacks[p.Get("callback_query_id")]
	s.mu.Unlock()
	if !known {
		writeReply(w, Error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid"))
		return
	}
	writeOK(w, true)
}

func (s *Server) editMessageText(w http.ResponseWriter, p Params) {
	chat, id, text := p.Get("chat_id"), p.Int("message_id"), p.Get("text")
	switch {
	case strings.TrimSpace(text) == "":
		writeReply(w, Error(400, TextEmpty))
		return
	case utf16Len(text) > MaxTextUnits:
		writeReply(w, TooLong())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range s.sent {
		if sm.ChatID != chat || sm.MessageID != id {
			continue
		}
		if sm.Text == text {
			writeReply(w, Error(400, NotModified))
			return
		}
		sm.Text = text
		sm.Edits++
		s.notifyLocked()
		writeOK(w, s.resultLocked(sm))
		return
	}
	writeReply(w, Error(400, "Bad Request: message to edit not found"))
}

// Script queues one-shot answers for method: the next len(replies) calls
// get them in order, then normal service resumes. Scripted answers are given
// whatever the token.
func (s *Server) Script(method string, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[method] = append(s.scripts[method], replies...)
}

// Always answers every call of method with r (after any one-shot scripts)
// until Clear.
func (s *Server) Always(method string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.always[method] = r
}

// Clear removes the scripts of method.
func (s *Server) Clear(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.scripts, method)
	delete(s.always, method)
}

// Push queues u for getUpdates and returns its update_id. Zero update and
// message ids and dates are filled in.
func (s *Server) Push(u Update) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.UpdateID == 0 {
		s.nextUpdate++
		u.UpdateID = s.nextUpdate
	} else if u.UpdateID > s.nextUpdate {
		s.nextUpdate = u.UpdateID
	}
	for _, m := range []*Message{u.Message, u.EditedMessage, u.ChannelPost} {
		if m == nil {
			continue
		}
		if m.MessageID == 0 {
			s.nextMessage++
			m.MessageID = s.nextMessage
		}
		if m.Date == 0 {
			m.Date = time.Now().Unix()
		}
	}
	raw, err := json.Marshal(u)
	if err != nil {
		panic("telegramtest: marshal update: " + err.Error())
	}
	s.insertLocked(u.UpdateID, raw)
	return u.UpdateID
}

// PushRaw queues a raw update, which must carry its update_id.
func (s *Server) PushRaw(raw string) (int64, error) {
	var head struct {
		UpdateID *int64 `json:"update_id"`
	}
	if err := json.Unmarshal([]byte(raw), &head); err != nil || head.UpdateID == nil {
		return 0, errors.New("telegramtest: raw update without update_id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if *head.UpdateID > s.nextUpdate {
		s.nextUpdate = *head.UpdateID
	}
	s.insertLocked(*head.UpdateID, json.RawMessage(raw))
	return *head.UpdateID, nil
}

func (s *Server) insertLocked(id int64, raw json.RawMessage) {
	s.queue = append(s.queue, queued{id: id, raw: raw, kind: updateKind(raw)})
	sort.SliceStable(s.queue, func(i, j int) bool { return s.queue[i].id < s.queue[j].id })
	s.notifyLocked()
}

// PushCallback queues the press of a button with data by from under the
// bot's message messageID in chat, and returns the update_id and the
// callback query's id.
func (s *Server) PushCallback(chat Chat, from User, messageID int64, data string) (int64, string) {
	s.mu.Lock()
	s.nextCallback++
	id := fmt.Sprintf("cq%d-%d", s.nextCallback, time.Now().UnixNano())
	if s.callbacks == nil {
		s.callbacks = map[string]bool{}
	}
	s.callbacks[id] = true
	s.mu.Unlock()
	raw, err := json.Marshal(map[string]any{
		"id":            id,
		"from":          from,
		"chat_instance": fmt.Sprint(chat.ID),
		"data":          data,
		"message":       Message{MessageID: messageID, From: &s.Bot, Chat: chat, Date: time.Now().Unix()},
	})
	if err != nil {
		panic("telegramtest: marshal callback query: " + err.Error())
	}
	return s.Push(Update{CallbackQuery: raw}), id
}

// PushText queues a text message from `from` in chat and returns the
// update_id.
func (s *Server) PushText(chat Chat, from User, text string) int64 {
	return s.Push(Update{Message: &Message{From: &from, Chat: chat, Text: text}})
}

// Requests returns the recorded calls of method ("" for all).
func (s *Server) Requests(method string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if method == "" || r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// Count returns how many calls of method ("" for all) were received.
func (s *Server) Count(method string) int { return len(s.Requests(method)) }

// Sent returns copies of the messages the bot sent, in order.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SentMessage, len(s.sent))
	for i, sm := range s.sent {
		out[i] = *sm
	}
	return out
}

// Transcript returns the texts the user sees in chat, in order, edits
// applied.
func (s *Server) Transcript(chatID string) []string {
	var out []string
	for _, sm := range s.Sent() {
		if sm.ChatID == chatID {
			out = append(out, sm.Text)
		}
	}
	return out
}

// Confirmed returns the highest offset received: every update below it is
// confirmed and forgotten.
func (s *Server) Confirmed() int64 { return fakeserver.Get(&s.mu, &s.confirmed) }

// Pending returns how many updates are queued and not confirmed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// NegativeOffsetSeen reports whether any getUpdates used a negative offset,
// which throws pending updates away.
func (s *Server) NegativeOffsetSeen() bool { return fakeserver.Get(&s.mu, &s.negative) }

// Held returns how many getUpdates calls are waiting for an update now.
func (s *Server) Held() int { return fakeserver.Get(&s.mu, &s.held) }

// ClientHeader names the client a request comes from, for the count of
// pollers: a test that puts several clients behind proxies of its own
// (one per herald node, say) sets it to tell them apart, as their
// addresses would for Telegram. Without it each connection is a client of
// its own.
const ClientHeader = "X-Telegramtest-Client"

// Pollers returns how many clients have a getUpdates call being answered
// now, held or not.
func (s *Server) Pollers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.polling)
}

// MaxPollers returns the most clients that ever had a getUpdates call
// being answered at once. A bot has one poller: more than 1 means two
// clients polled at the same time (Telegram ends the older poll with 409).
// A client that names itself in ClientHeader and gives up a poll and
// polls again at once counts once, however late the server notices the
// first one gone; without the header a client is its connection.
func (s *Server) MaxPollers() int { return fakeserver.Get(&s.mu, &s.maxPollers) }

// Blackholed returns how many requests are being blackholed now.
func (s *Server) Blackholed() int { return fakeserver.Get(&s.mu, &s.blackholed) }

// Wait blocks until cond returns true, re-checking after every change of
// the server's state (a request, an update, a poll held or released), and
// fails the test after timeout. cond may call the accessors of s.
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	s.changes.Wait(t, timeout, "telegramtest: "+what, cond)
}
