// SPDX-License-Identifier: Apache-2.0

package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Message is one entry of a recorded request's messages.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Parts holds the content parts of a multi-part message (Content is
	// then the concatenation of its text parts).
	Parts []Part `json:"-"`
}

// Part is one content part of a recorded message.
type Part struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url,omitempty"`
}

// UnmarshalJSON accepts a string content or an array of content parts.
func (m *Message) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m.Role = raw.Role
	if len(raw.Content) > 0 && raw.Content[0] == '[' {
		if err := json.Unmarshal(raw.Content, &m.Parts); err != nil {
			return err
		}
		var text strings.Builder
		for _, p := range m.Parts {
			text.WriteString(p.Text)
		}
		m.Content = text.String()
		return nil
	}
	return json.Unmarshal(raw.Content, &m.Content)
}

// Body is the decoded JSON of a recorded request.
type Body struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
}

// Request is one recorded request.
type Request struct {
	Header http.Header
	// Authorization, SessionID (X-Hermes-Session-Id) and IdempotencyKey
	// (Idempotency-Key) are copied from Header for convenience.
	Authorization  string
	SessionID      string
	IdempotencyKey string
	Body           Body
	Raw            []byte // the body as received
}

// LastUser returns the content of the request's last user message.
func (r Request) LastUser() string {
	for i := len(r.Body.Messages) - 1; i >= 0; i-- {
		if r.Body.Messages[i].Role == "user" {
			return r.Body.Messages[i].Content
		}
	}
	return ""
}

// Server is the fake backend. Create it with New.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port), what agent.url takes.
	URL string

	srv       *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever state changes
	key       string
	queue     []Script
	handler   http.HandlerFunc
	delay     time.Duration
	hold      chan struct{}
	reqs      []Request
	active    int
	maxActive int
}

// New starts a server on 127.0.0.1 and closes it when the test ends.
func New(tb testing.TB) *Server {
	s := &Server{closed: make(chan struct{}), changed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(s.Close)
	return s
}

// NewOn is New on a given listener (for instance one in a sandbox's
// network namespace). The server owns ln from then on.
func NewOn(tb testing.TB, ln net.Listener) *Server {
	s := &Server{closed: make(chan struct{}), changed: make(chan struct{})}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	s.srv.Start()
	s.URL = s.srv.URL
	tb.Cleanup(s.Close)
	return s
}

// Close breaks every connection, ends every handler (hanging ones included:
// their clients see a broken connection, never a response) and stops the
// server. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.CloseClientConnections()
		close(s.closed)
		s.srv.Close()
	})
}

// SetKey makes the server answer 401 unless the request carries
// "Authorization: Bearer key". "" (the default) accepts any request.
func (s *Server) SetKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// Enqueue adds scripts; each request takes the next one. When the queue is
// empty the handler (SetHandler) or the default behaviour answers.
func (s *Server) Enqueue(scripts ...Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, scripts...)
}

// SetHandler answers requests when no script is queued, instead of the
// default behaviour. The request body can be read again. nil restores the
// default.
func (s *Server) SetHandler(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// SetWordDelay slows the default behaviour down: it pauses d before each
// word. Useful for drain and interrupt tests.
func (s *Server) SetWordDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Hold makes every request that arrives wait, after being recorded and
// counted as active, until release is called (or its client goes away).
// Use it with WaitActive to observe how many turns herald runs at once.
func (s *Server) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				s.hold = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Active returns the number of requests being answered now.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// MaxActive returns the largest number of requests answered at once.
func (s *Server) MaxActive() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxActive
}

// WaitRequests waits until at least n requests were received.
func (s *Server) WaitRequests(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return len(s.reqs) >= n }, fmt.Sprintf("%d requests", n))
}

// WaitActive waits until exactly n requests are being answered.
func (s *Server) WaitActive(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return s.active == n }, fmt.Sprintf("%d active requests", n))
}

func (s *Server) wait(ctx context.Context, cond func() bool, what string) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("agenttest: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// notify wakes waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// AgentConfig returns an agent configuration of the given kind ("openai"
// or "hermes") pointing at s. If s has a key (SetKey; kind hermes sets
// "agenttest-key" when none is set, as the real server needs one), it is
// written to a file in tb.TempDir() and referenced from the config.
// Timeouts are left zero (the defaults); set them as the test needs.
func (s *Server) AgentConfig(tb testing.TB, kind string) config.Agent {
	tb.Helper()
	s.mu.Lock()
	if kind == "hermes" && s.key == "" {
		s.key = "agenttest-key"
	}
	key := s.key
	s.mu.Unlock()
	cfg := config.Agent{Kind: kind, URL: s.URL, Model: "hermes-agent", MaxAttempts: 3}
	if key != "" {
		p := filepath.Join(tb.TempDir(), "agent.key")
		if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		cfg.Key = secret.Ref{File: p}
	}
	return cfg
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	rec := Request{
		Header:         r.Header.Clone(),
		Authorization:  r.Header.Get("Authorization"),
		SessionID:      r.Header.Get("X-Hermes-Session-Id"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Raw:            raw,
	}
	bodyErr := json.Unmarshal(raw, &rec.Body)

	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.active++
	s.maxActive = max(s.maxActive, s.active)
	hold, key := s.hold, s.key
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.notify()
		s.mu.Unlock()
	}()

	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		case <-s.closed:
			panic(http.ErrAbortHandler)
		}
	}
	if rec.SessionID != "" {
		w.Header().Set("X-Hermes-Session-Id", rec.SessionID)
	}
	if key != "" && rec.Authorization != "Bearer "+key {
		s.play(w, r, Error(http.StatusUnauthorized, "Invalid API key"))
		return
	}
	if bodyErr != nil {
		s.play(w, r, Error(http.StatusBadRequest, "invalid JSON body: "+bodyErr.Error()))
		return
	}

	s.mu.Lock()
	var sc *Script
	if len(s.queue) > 0 {
		sc = &s.queue[0]
		s.queue = s.queue[1:]
	}
	h, delay := s.handler, s.delay
	s.mu.Unlock()
	switch {
	case sc != nil:
		s.play(w, r, *sc)
	case h != nil:
		r.Body = io.NopCloser(bytes.NewReader(raw))
		h(w, r)
	case rec.Body.Stream:
		s.play(w, r, Stream(ReplySteps("agent: "+rec.LastUser(), delay)...))
	default:
		s.play(w, r, JSON("agent: "+rec.LastUser()))
	}
}

// Script is the answer to one request.
type Script struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header holds extra response headers (Retry-After…).
	Header map[string]string
	// Body is sent as is when Steps is empty, with ContentType (default
	// application/json).
	Body        string
	ContentType string
	// Steps, when set, make the answer a text/event-stream written step by
	// step, each flushed. A stream without a Done step is truncated.
	Steps []Step
	// Hang sends nothing, not even headers, until the client goes away or
	// the server closes.
	Hang bool
}

// JSON is a non-streaming chat.completion reply, as from a server that
// ignores "stream": true.
func JSON(text string) Script {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-agenttest", "object": "chat.completion", "created": 0, "model": "hermes-agent",
		"choices": []any{map[string]any{
			"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
	})
	return Script{Body: string(b)}
}

// Error is an error status with an OpenAI-style error body.
func Error(status int, message string) Script {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": "agenttest_error", "code": nil}})
	return Script{Status: status, Body: string(b)}
}

// RateLimited is the Hermes API server's 429 beyond max_concurrent_runs, with
// the given Retry-After ("" for none).
func RateLimited(retryAfter string) Script {
	sc := Error(http.StatusTooManyRequests, "Too many concurrent runs (max 10)")
	if retryAfter != "" {
		sc.Header = map[string]string{"Retry-After": retryAfter}
	}
	return sc
}

// Hang answers nothing until the client cancels.
func Hang() Script { return Script{Hang: true} }

// Stream is a text/event-stream reply made of steps.
func Stream(steps ...Step) Script { return Script{Steps: steps} }

// Reply is the default behaviour's reply with the given text: role chunk,
// one chunk per word, finish, usage chunk, [DONE].
func Reply(text string) Script { return Stream(ReplySteps(text, 0)...) }

// ReplySteps are Reply's steps, pausing delay before each word.
func ReplySteps(text string, delay time.Duration) []Step {
	steps := []Step{Role()}
	for _, w := range words(text) {
		if delay > 0 {
			steps = append(steps, Pause(delay))
		}
		steps = append(steps, Content(w))
	}
	return append(steps, Finish("stop"), Usage(), Done())
}

// words splits text into pieces that concatenate back to it: leading white
// space plus one word each.
func words(text string) []string {
	var out []string
	start, inWord := 0, false
	for i, r := range text {
		space := unicode.IsSpace(r)
		if inWord && space {
			out = append(out, text[start:i])
			start, inWord = i, false
		}
		if !space {
			inWord = true
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// Step is one piece of a streamed reply.
type Step struct {
	raw   string
	pause time.Duration
	stall bool
	abort bool
}

func chunkStep(delta map[string]any, finish any) Step {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-agenttest", "object": "chat.completion.chunk", "created": 0, "model": "hermes-agent",
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
	})
	return Data(string(b))
}

// Role is the first chunk: delta.role "assistant".
func Role() Step { return chunkStep(map[string]any{"role": "assistant", "content": ""}, nil) }

// Content is a chunk with delta.content text.
func Content(text string) Step { return chunkStep(map[string]any{"content": text}, nil) }

// Finish is a chunk with an empty delta and finish_reason.
func Finish(reason string) Step { return chunkStep(map[string]any{}, reason) }

// Usage is the stream_options.include_usage chunk with "choices": [].
func Usage() Step {
	return Data(`{"id":"chatcmpl-agenttest","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
}

// UsageNull is a usage chunk with "choices": null, as some servers send.
func UsageNull() Step {
	return Data(`{"id":"chatcmpl-agenttest","object":"chat.completion.chunk","choices":null,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
}

// ToolProgress is a Hermes "event: hermes.tool.progress" event.
func ToolProgress(tool, label string) Step {
	b, _ := json.Marshal(map[string]string{"tool": tool, "label": label, "status": "running"})
	return Event("hermes.tool.progress", string(b))
}

// Event is a named event with one data line.
func Event(name, data string) Step { return Raw("event: " + name + "\ndata: " + data + "\n\n") }

// Data is an unnamed event with one data line.
func Data(data string) Step { return Raw("data: " + data + "\n\n") }

// Keepalive is a ": keepalive" comment.
func Keepalive() Step { return Raw(": keepalive\n\n") }

// StreamError is a mid-stream `data: {"error":{…}}` event.
func StreamError(message string) Step {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": "server_error"}})
	return Data(string(b))
}

// Done is the final "data: [DONE]".
func Done() Step { return Data("[DONE]") }

// Raw writes s as is (odd line endings, partial events).
func Raw(s string) Step { return Step{raw: s} }

// Pause waits d before the next step (returning early when the client goes
// away).
func Pause(d time.Duration) Step { return Step{pause: d} }

// Stall sends nothing more, keeping the response open, until the client
// goes away or the server closes.
func Stall() Step { return Step{stall: true} }

// Abort breaks the connection without ending the response properly.
func Abort() Step { return Step{abort: true} }

func (s *Server) play(w http.ResponseWriter, r *http.Request, sc Script) {
	ctx := r.Context()
	if sc.Hang {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			panic(http.ErrAbortHandler)
		}
	}
	for k, v := range sc.Header {
		w.Header().Set(k, v)
	}
	status := sc.Status
	if status == 0 {
		status = http.StatusOK
	}
	if len(sc.Steps) == 0 {
		ct := sc.ContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, sc.Body)
		return
	}
	ct := sc.ContentType
	if ct == "" {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var t *time.Timer
	for _, st := range sc.Steps {
		switch {
		case st.abort:
			panic(http.ErrAbortHandler)
		case st.stall:
			select {
			case <-ctx.Done():
				return
			case <-s.closed:
				panic(http.ErrAbortHandler)
			}
		case st.pause > 0:
			if t == nil {
				t = time.NewTimer(st.pause)
				defer t.Stop()
			} else {
				t.Reset(st.pause)
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			case <-s.closed:
				panic(http.ErrAbortHandler)
			}
		default:
			if _, err := io.WriteString(w, st.raw); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
