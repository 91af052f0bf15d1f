// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Message is a message as the platform shows it in the chat: retried
// requests carrying the same uuid show once.
type Message struct {
	MessageID     string
	ChatID        string
	ReplyTo       string // message_id replied to, "" for a new message
	ReplyInThread bool
	UUID          string
	MsgType       string
	Text          string
	// Key is the image_key or file_key an image, file, audio or post
	// message shows.
	Key   string
	Edits int
	// Mentions are the users the text mentions as the platform renders
	// it: the user_id (open_id, id, email) of each <at …> tag, "all" for
	// everyone in the chat.
	Mentions []string
	// Buttons are the buttons of a card.
	Buttons []Button
}

// atTag is a mention tag as a text message renders it: <at user_id="ou_1">
// Name</at>, <at user_id="all"></at>, and the id=, open_id= and email=
// variants, quoted or not, in any letter case.
var atTag = regexp.MustCompile(`(?i)<at\s[^>]*?\b(?:user_id|open_id|id|email)\s*=\s*"?([^"\s>]*)"?[^>]*>`)

// mentions lists the users text mentions.
func mentions(text string) []string {
	var out []string
	for _, m := range atTag.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// Failure scripts the answer to one request on the message endpoints
// (create, reply, edit). Requests take queued failures in order.
type Failure struct {
	// Status is the HTTP status; default 400.
	Status int
	// Code and Msg form the body {"code":Code,"msg":Msg}.
	Code int
	Msg  string
	// RateLimitReset is sent as x-ogw-ratelimit-reset (seconds) when set.
	RateLimitReset string
}

type restState struct {
	tokens       map[string]time.Time
	tokensIssued int
	failures     []Failure
	messages     []*Message
	byUUID       map[string]*Message
	byID         map[string]*Message
	requests     map[string]int
	nextMsg      int
}

func newRestState() restState {
	return restState{
		tokens:   map[string]time.Time{},
		byUUID:   map[string]*Message{},
		byID:     map[string]*Message{},
		requests: map[string]int{},
	}
}

func (s *Server) restRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /open-apis/auth/v3/tenant_access_token/internal", s.handleToken)
	mux.HandleFunc("POST /open-apis/im/v1/messages", s.handleCreate)
	mux.HandleFunc("POST /open-apis/im/v1/messages/{id}/reply", s.handleReply)
	mux.HandleFunc("PUT /open-apis/im/v1/messages/{id}", s.handleEdit)
	mux.HandleFunc("GET /open-apis/bot/v3/info", s.handleBotInfo)
	mux.HandleFunc("GET /open-apis/im/v1/messages/{id}/resources/{key}", s.handleResource)
	mux.HandleFunc("POST /open-apis/im/v1/images", s.handleUpload)
	mux.HandleFunc("POST /open-apis/im/v1/files", s.handleUpload)
}

// FailNext queues failures for the next requests to the message endpoints.
func (s *Server) FailNext(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rest.failures = append(s.rest.failures, f...)
}

// InvalidateTokens makes every token issued so far invalid: the next REST
// call with one gets code 99991663.
func (s *Server) InvalidateTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rest.tokens = map[string]time.Time{}
}

// TokensIssued is the number of tenant access tokens issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rest.tokensIssued
}

// Messages returns the messages as the platform shows them.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.rest.messages))
	for i, m := range s.rest.messages {
		out[i] = *m
	}
	return out
}

// WaitMessages waits until n messages are shown.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d messages", n), func() bool { return len(s.rest.messages) >= n })
	return s.Messages()
}

// Requests returns how many requests the REST endpoint named by its mux
// pattern (e.g. "POST /open-apis/im/v1/messages/{id}/reply") received.
func (s *Server) Requests(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rest.requests[pattern]
}

func (s *Server) countRequest(r *http.Request) {
	s.mu.Lock()
	s.rest.requests[r.Pattern]++
	s.changed()
	s.mu.Unlock()
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	var body struct {
		AppID     string `json:"app_id"`
		AppSecret string `json:"app_secret"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 10002, "msg": "bad request"})
		return
	}
	if body.AppID != s.opts.AppID || body.AppSecret != s.opts.AppSecret {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 10014, "msg": "app secret invalid"})
		return
	}
	s.mu.Lock()
	s.rest.tokensIssued++
	tok := fmt.Sprintf("t-fake-%d", s.rest.tokensIssued)
	s.rest.tokens[tok] = time.Now().Add(time.Duration(s.opts.TokenExpire) * time.Second)
	s.changed()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"code": 0, "msg": "ok", "tenant_access_token": tok, "expire": s.opts.TokenExpire,
	})
}

// authorized checks the bearer token and answers 99991663 if it is not one
// the fake issued (or it expired).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.rest.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || time.Now().After(exp) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 99991663, "msg": "Invalid access token for authorization. Please make a request with token attached."})
		return false
	}
	return true
}

// nextFailure takes a Blackhole at Messages (hang: the caller stores the
// message and then never answers) or else pops a scripted failure and
// writes it (handled).
func (s *Server) nextFailure(w http.ResponseWriter) (hang, handled bool) {
	if _, ok := s.TakeIf(Messages, fakeserver.KindBlackhole); ok {
		return true, false
	}
	s.mu.Lock()
	if len(s.rest.failures) == 0 {
		s.mu.Unlock()
		return false, false
	}
	f := s.rest.failures[0]
	s.rest.failures = s.rest.failures[1:]
	s.mu.Unlock()
	status := f.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if f.RateLimitReset != "" {
		w.Header().Set("x-ogw-ratelimit-limit", "5")
		w.Header().Set("x-ogw-ratelimit-reset", f.RateLimitReset)
	}
	writeJSON(w, status, map[string]any{"code": f.Code, "msg": f.Msg})
	return false, true
}

type sendBody struct {
	ReceiveID     string `json:"receive_id"`
	MsgType       string `json:"msg_type"`
	Content       string `json:"content"`
	UUID          string `json:"uuid"`
	ReplyInThread bool   `json:"reply_in_thread"`
	key           string
	buttons       []Button
}

// Button is a button of a card (msg_type interactive).
type Button struct {
	Label string
	Type  string // primary, danger, default
	// Value is its callback behavior's value.
	Value map[string]any
}

// cardContent reads a card JSON 2.0: the texts of its div elements, joined
// by newlines, and its buttons. It refuses what the platform would: not
// schema 2.0, a button without a plain_text label or without a callback
// behavior whose value is an object.
func cardContent(content string) (string, []Button, error) {
	var c struct {
		Schema string `json:"schema"`
		Body   struct {
			Elements []struct {
				Tag  string `json:"tag"`
				Text *struct {
					Tag     string `json:"tag"`
					Content string `json:"content"`
				} `json:"text"`
				Type      string `json:"type"`
				Behaviors []struct {
					Type  string          `json:"type"`
					Value json.RawMessage `json:"value"`
				} `json:"behaviors"`
			} `json:"elements"`
		} `json:"body"`
	}
	if err := json.Unmarshal([]byte(content), &c); err != nil {
		return "", nil, fmt.Errorf("card content: %w", err)
	}
	if c.Schema != "2.0" {
		return "", nil, fmt.Errorf("card schema %q, want 2.0", c.Schema)
	}
	var texts []string
	var buttons []Button
	for _, e := range c.Body.Elements {
		switch e.Tag {
		case "div":
			if e.Text == nil || e.Text.Tag != "plain_text" {
				return "", nil, errors.New("div without plain_text text")
			}
			texts = append(texts, e.Text.Content)
		case "button":
			if e.Text == nil || e.Text.Tag != "plain_text" || e.Text.Content == "" || len(e.Behaviors) != 1 || e.Behaviors[0].Type != "callback" {
				return "", nil, errors.New("button without a plain_text label and one callback behavior")
			}
			var v map[string]any
			if err := json.Unmarshal(e.Behaviors[0].Value, &v); err != nil || v == nil {
				return "", nil, errors.New("button callback value is not an object")
			}
			buttons = append(buttons, Button{Label: e.Text.Content, Type: e.Type, Value: v})
		default:
			return "", nil, fmt.Errorf("card element %q unknown to the fake", e.Tag)
		}
	}
	return strings.Join(texts, "\n"), buttons, nil
}

func (s *Server) decodeSend(w http.ResponseWriter, r *http.Request) (sendBody, string, bool) {
	var b sendBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 200<<10)).Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230025, "msg": "bad body: " + err.Error()})
		return b, "", false
	}
	if b.MsgType == "interactive" {
		text, buttons, err := cardContent(b.Content)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230099, "msg": err.Error()})
			return b, "", false
		}
		b.buttons = buttons
		return b, text, true
	}
	if b.MsgType != "text" {
		key, text, err := s.mediaContent(b.MsgType, b.Content)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230001, "msg": err.Error()})
			return b, "", false
		}
		b.key = key
		return b, text, true
	}
	var c struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal([]byte(b.Content), &c); err != nil || c.Text == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230001, "msg": "content is not {\"text\":...} JSON"})
		return b, "", false
	}
	if len(b.UUID) > 50 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230001, "msg": "uuid longer than 50 characters"})
		return b, "", false
	}
	return b, *c.Text, true
}

func (s *Server) store(chatID, replyTo string, b sendBody, text string) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.UUID != "" {
		if m := s.rest.byUUID[b.UUID]; m != nil {
			return m
		}
	}
	s.rest.nextMsg++
	m := &Message{
		MessageID: fmt.Sprintf("om_sent_%d", s.rest.nextMsg), ChatID: chatID, ReplyTo: replyTo,
		ReplyInThread: b.ReplyInThread, UUID: b.UUID, MsgType: b.MsgType, Text: text,
		Mentions: mentions(text), Key: b.key, Buttons: b.buttons,
	}
	s.rest.messages = append(s.rest.messages, m)
	s.rest.byID[m.MessageID] = m
	if b.UUID != "" {
		s.rest.byUUID[b.UUID] = m
	}
	s.changed()
	return m
}

func (s *Server) answerMessage(w http.ResponseWriter, r *http.Request, m *Message, hang bool) {
	if hang {
		fakeserver.Hold(r, s.quit)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "success", "data": map[string]any{
		"message_id": m.MessageID, "chat_id": m.ChatID, "msg_type": m.MsgType,
		"create_time": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}})
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if !s.authorized(w, r) {
		return
	}
	hang, handled := s.nextFailure(w)
	if handled {
		return
	}
	if t := r.URL.Query().Get("receive_id_type"); t != "chat_id" {
		s.t.Errorf("feishutest: create message with receive_id_type %q, want chat_id", t)
	}
	b, text, ok := s.decodeSend(w, r)
	if !ok {
		return
	}
	if b.ReceiveID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230001, "msg": "receive_id is empty"})
		return
	}
	s.answerMessage(w, r, s.store(b.ReceiveID, "", b, text), hang)
}

func (s *Server) handleReply(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if !s.authorized(w, r) {
		return
	}
	hang, handled := s.nextFailure(w)
	if handled {
		return
	}
	b, text, ok := s.decodeSend(w, r)
	if !ok {
		return
	}
	s.answerMessage(w, r, s.store("oc_of_"+r.PathValue("id"), r.PathValue("id"), b, text), hang)
}

func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if !s.authorized(w, r) {
		return
	}
	hang, handled := s.nextFailure(w)
	if handled {
		return
	}
	_, text, ok := s.decodeSend(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	m := s.rest.byID[r.PathValue("id")]
	if m != nil {
		m.Text = text
		m.Mentions = mentions(text)
		m.Edits++
		s.changed()
	}
	s.mu.Unlock()
	if m == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 230001, "msg": "message not found"})
		return
	}
	s.answerMessage(w, r, m, hang)
}

func (s *Server) handleBotInfo(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if !s.authorized(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "ok", "bot": map[string]any{
		"activate_status": 2, "app_name": "herald", "open_id": s.opts.BotOpenID,
	}})
}
