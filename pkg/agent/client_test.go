// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
	"github.com/heraldgw/herald/pkg/testsupport/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestClient builds a client of kind for srv with short backoffs.
func newTestClient(t *testing.T, srv *agenttest.Server, kind string, edit func(*config.Agent)) *client {
	t.Helper()
	cfg := srv.AgentConfig(t, kind)
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := a.(*client)
	c.backoffBase, c.backoffMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// recorder collects Events.
type recorder struct {
	deltas   []string
	progress []string
}

func (r *recorder) events() Events {
	return Events{
		Delta:    func(s string) { r.deltas = append(r.deltas, s) },
		Progress: func(k string) { r.progress = append(r.progress, k) },
	}
}

func userRequest(text string) Request {
	return Request{
		SessionID:      "telegram:dm:42#1",
		Messages:       []Message{{Role: RoleUser, Content: text}},
		IdempotencyKey: "hr-0123-1",
	}
}

func TestCompleteScripts(t *testing.T) {
	tests := []struct {
		name     string
		scripts  []agenttest.Script
		want     string
		err      error  // sentinel, nil for success
		errText  string // substring of the error
		requests int
		deltas   []string // nil: not checked
		progress []string // nil: not checked
	}{
		{
			name: "stream with hermes extras",
			scripts: []agenttest.Script{agenttest.Stream(
				agenttest.Role(), agenttest.ToolProgress("web_search", "searching"), agenttest.Keepalive(),
				agenttest.Content("Hel"), agenttest.Content("lo"), agenttest.Event("approval.request", `{"id":"1"}`),
				agenttest.Event("some.future.event", `{}`), agenttest.Content(" world"), agenttest.Finish("stop"),
				agenttest.Usage(), agenttest.Done())},
			want: "Hello world", requests: 1,
			deltas:   []string{"Hel", "lo", " world"},
			progress: []string{ProgressRole, ProgressTool, ProgressKeepalive},
		},
		{
			name:    "usage chunk with null choices",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Content("x"), agenttest.Finish("stop"), agenttest.UsageNull(), agenttest.Done())},
			want:    "x", requests: 1,
		},
		{
			name:    "default reply script",
			scripts: []agenttest.Script{agenttest.Reply("two words")},
			want:    "two words", requests: 1, deltas: []string{"two", " words"}, progress: []string{ProgressRole},
		},
		{
			name:    "non-streaming JSON",
			scripts: []agenttest.Script{agenttest.JSON("whole reply")},
			want:    "whole reply", requests: 1, deltas: []string{"whole reply"}, progress: []string{},
		},
		{
			name: "CR line endings split across writes",
			scripts: []agenttest.Script{agenttest.Stream(
				agenttest.Raw(`data: {"choices":[{"delta":{"content":"a"}}]}`+"\r"),
				agenttest.Pause(5*time.Millisecond), agenttest.Raw("\n\r"), agenttest.Pause(5*time.Millisecond),
				agenttest.Raw("\ndata: "), agenttest.Pause(5*time.Millisecond),
				agenttest.Raw(`{"choices":[{"delta":{"content":"b"}}]}`+"\r\n\r"),
				agenttest.Raw("\n: ka\r\rdata: [DONE]\r\r"))},
			want: "ab", requests: 1, deltas: []string{"a", "b"}, progress: []string{ProgressKeepalive},
		},
		{
			name:    "empty reply",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Finish("stop"), agenttest.Done())},
			want:    "", requests: 1, deltas: []string{},
		},
		{
			name:    "truncated after finish_reason is accepted",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Content("a"), agenttest.Finish("stop"))},
			want:    "a", requests: 1,
		},
		{
			name:    "unauthorized",
			scripts: []agenttest.Script{agenttest.Error(401, "Invalid API key")},
			err:     ErrRejected, errText: "agent: HTTP 401 Unauthorized: Invalid API key", requests: 1,
		},
		{
			name:    "bad request",
			scripts: []agenttest.Script{agenttest.Error(400, "messages must not be empty")},
			err:     ErrRejected, errText: "HTTP 400", requests: 1,
		},
		{
			name:    "idempotency conflict",
			scripts: []agenttest.Script{agenttest.Error(409, "idempotency_key_conflict")},
			err:     ErrRejected, errText: "HTTP 409", requests: 1,
		},
		{
			name:    "plain text error body",
			scripts: []agenttest.Script{{Status: 404, Body: "404 page not found\n", ContentType: "text/plain"}},
			err:     ErrRejected, errText: "HTTP 404 Not Found: 404 page not found", requests: 1,
		},
		{
			name:    "redirect is not followed",
			scripts: []agenttest.Script{{Status: 301, Header: map[string]string{"Location": "https://elsewhere.invalid/v1/chat/completions"}}},
			err:     ErrRejected, errText: "check agent.url", requests: 1,
		},
		{
			name:    "500 then success",
			scripts: []agenttest.Script{agenttest.Error(500, "boom"), agenttest.Reply("ok")},
			want:    "ok", requests: 2,
		},
		{
			name:    "5xx on every attempt",
			scripts: []agenttest.Script{agenttest.Error(502, "a"), agenttest.Error(503, "b"), agenttest.Error(500, "c"), agenttest.Reply("unused")},
			err:     ErrUnavailable, errText: "HTTP 500 Internal Server Error: c (agenttest_error) (after 3 attempts)", requests: 3,
		},
		{
			name:    "429 then success",
			scripts: []agenttest.Script{agenttest.RateLimited(""), agenttest.Reply("ok")},
			want:    "ok", requests: 2,
		},
		{
			name:    "429 on every attempt",
			scripts: []agenttest.Script{agenttest.RateLimited(""), agenttest.RateLimited(""), agenttest.RateLimited("")},
			err:     ErrRateLimited, errText: "Too many concurrent runs", requests: 3,
		},
		{
			name:    "mid-stream error after content is not retried",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Content("partial"), agenttest.StreamError("upstream exploded")), agenttest.Reply("unused")},
			err:     ErrUnavailable, errText: "agent: backend error: upstream exploded (server_error)", requests: 1,
			deltas: []string{"partial"},
		},
		{
			name:    "mid-stream error before content is not retried",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.ToolProgress("t", "l"), agenttest.StreamError("no")), agenttest.Reply("unused")},
			err:     ErrUnavailable, errText: "backend error: no", requests: 1,
		},
		{
			name:    "error object in a 200 JSON body",
			scripts: []agenttest.Script{{Body: `{"error":{"message":"model not loaded","code":"model_not_found"}}`}},
			err:     ErrUnavailable, errText: "model not loaded (model_not_found)", requests: 1,
		},
		{
			name:    "plain-text error event",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Event("error", "overloaded, try later"))},
			err:     ErrUnavailable, errText: "backend error: overloaded, try later", requests: 1,
		},
		{
			name:    "JSON without choices",
			scripts: []agenttest.Script{{Body: `{"id":"x","object":"chat.completion","choices":[]}`}},
			err:     ErrProtocol, errText: "without choices", requests: 1,
		},
		{
			name:    "truncated stream",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Content("a")), agenttest.Reply("unused")},
			err:     ErrUnavailable, errText: "without [DONE]", requests: 1,
		},
		{
			name:    "connection broken mid-stream",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Content("a"), agenttest.Abort()), agenttest.Reply("unused")},
			err:     ErrUnavailable, errText: "reading stream", requests: 1,
		},
		{
			name:    "not an API server",
			scripts: []agenttest.Script{{Body: "<html>hello</html>", ContentType: "text/html"}},
			err:     ErrProtocol, errText: `unexpected Content-Type "text/html"`, requests: 1,
		},
		{
			name:    "malformed chunk",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Data(`{"choices":[{`), agenttest.Done())},
			err:     ErrProtocol, errText: "bad chunk", requests: 1,
		},
		{
			name:    "oversized event",
			scripts: []agenttest.Script{agenttest.Stream(agenttest.Data(strings.Repeat("x", maxEventBytes+10)), agenttest.Done())},
			err:     ErrProtocol, errText: "larger than 1 MiB", requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := agenttest.New(t)
			srv.Enqueue(tt.scripts...)
			c := newTestClient(t, srv, "hermes", nil)
			var rec recorder
			got, err := c.Complete(context.Background(), userRequest("hi"), rec.events())
			if tt.err == nil && err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("Complete error %v, want %v", err, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
			if err == nil && got != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
			if err == nil && strings.Join(rec.deltas, "") != got {
				t.Errorf("deltas %q do not add up to the reply %q", rec.deltas, got)
			}
			if n := len(srv.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.deltas != nil && fmt.Sprintf("%q", rec.deltas) != fmt.Sprintf("%q", tt.deltas) {
				t.Errorf("deltas %q, want %q", rec.deltas, tt.deltas)
			}
			if tt.progress != nil && fmt.Sprintf("%q", rec.progress) != fmt.Sprintf("%q", tt.progress) {
				t.Errorf("progress %q, want %q", rec.progress, tt.progress)
			}
		})
	}
}

func TestRequestHeadersHermes(t *testing.T) {
	srv := agenttest.New(t)
	srv.SetKey("sk-hermes")
	c := newTestClient(t, srv, "hermes", func(a *config.Agent) { a.Model = "m1" })
	if !c.KeepsHistory() {
		t.Error("hermes: KeepsHistory false")
	}
	got, err := c.Complete(context.Background(), userRequest("hello there"), Events{})
	if err != nil {
		t.Fatal(err)
	}
	if got != "agent: hello there" {
		t.Errorf("reply %q", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	for h, want := range map[string]string{
		"Authorization":       "Bearer sk-hermes",
		"X-Hermes-Session-Id": "telegram:dm:42#1",
		"Idempotency-Key":     "hr-0123-1",
		"Accept":              "text/event-stream",
		"Content-Type":        "application/json",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if r.Body.Model != "m1" || !r.Body.Stream || len(r.Body.Messages) != 1 || r.Body.Messages[0].Role != "user" || r.Body.Messages[0].Content != "hello there" || r.Body.Messages[0].Parts != nil {
		t.Errorf("body %s", r.Raw)
	}
}

func TestRequestHeadersOpenAINoKey(t *testing.T) {
	srv := agenttest.New(t)
	c := newTestClient(t, srv, "openai", nil)
	if c.KeepsHistory() {
		t.Error("openai: KeepsHistory true")
	}
	req := Request{SessionID: "s", Messages: []Message{
		{Role: RoleSystem, Content: "be brief"}, {Role: RoleUser, Content: "q1"}, {Role: RoleAssistant, Content: "a1"}, {Role: RoleUser, Content: "q2"},
	}}
	if _, err := c.Complete(context.Background(), req, Events{}); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	for _, h := range []string{"Authorization", "X-Hermes-Session-Id", "Idempotency-Key"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("header %s sent: %q", h, v)
		}
	}
	if len(r.Body.Messages) != 4 || r.Body.Model != "hermes-agent" {
		t.Errorf("body %s", r.Raw)
	}
}

func TestIdempotencyKeyStableAcrossRetries(t *testing.T) {
	srv := agenttest.New(t)
	srv.Enqueue(agenttest.Error(500, "a"), agenttest.RateLimited(""), agenttest.Reply("third time"))
	c := newTestClient(t, srv, "hermes", nil)
	got, err := c.Complete(context.Background(), userRequest("x"), Events{})
	if err != nil || got != "third time" {
		t.Fatalf("Complete = %q, %v", got, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.IdempotencyKey != "hr-0123-1" || r.SessionID != "telegram:dm:42#1" || !bytes.Equal(r.Raw, reqs[0].Raw) {
			t.Errorf("attempt %d: key %q, session %q, body %s", i+1, r.IdempotencyKey, r.SessionID, r.Raw)
		}
	}
}

func TestInvalidRequests(t *testing.T) {
	tests := []struct {
		name string
		kind string
		req  Request
	}{
		{"session id with LF", "hermes", Request{SessionID: "a\nb", Messages: []Message{{Role: RoleUser, Content: "x"}}}},
		{"session id with CR", "openai", Request{SessionID: "a\rX-Evil: 1", Messages: []Message{{Role: RoleUser, Content: "x"}}}},
		{"session id with NUL", "hermes", Request{SessionID: "a\x00", Messages: []Message{{Role: RoleUser, Content: "x"}}}},
		{"hermes without session id", "hermes", Request{Messages: []Message{{Role: RoleUser, Content: "x"}}}},
		{"idempotency key with LF", "openai", Request{IdempotencyKey: "k\n", Messages: []Message{{Role: RoleUser, Content: "x"}}}},
		{"no messages", "openai", Request{SessionID: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := agenttest.New(t)
			c := newTestClient(t, srv, tt.kind, nil)
			_, err := c.Complete(context.Background(), tt.req, Events{})
			if !errors.Is(err, ErrRejected) || !strings.HasPrefix(err.Error(), "agent: ") {
				t.Errorf("error %v, want agent: … ErrRejected", err)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	srv := agenttest.New(t)
	srv.Enqueue(agenttest.RateLimited("1"), agenttest.Reply("ok"))
	c := newTestClient(t, srv, "hermes", nil)
	start := time.Now()
	got, err := c.Complete(context.Background(), userRequest("x"), Events{})
	if err != nil || got != "ok" {
		t.Fatalf("Complete = %q, %v", got, err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("second attempt after %v, before Retry-After: 1", d)
	}
}

func TestRetryAfterBeyondDeadlineFailsAtOnce(t *testing.T) {
	srv := agenttest.New(t)
	srv.Enqueue(agenttest.RateLimited("30"), agenttest.Reply("unused"))
	c := newTestClient(t, srv, "hermes", func(a *config.Agent) { a.TotalTimeout = 5 * time.Second })
	_, err := c.Complete(context.Background(), userRequest("x"), Events{})
	// Waiting would have ended in the total timeout instead.
	if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v, want ErrRateLimited without waiting", err)
	}
	var he *HTTPError
	if !errors.As(err, &he) || he.RetryAfter != 30*time.Second || he.Status != 429 {
		t.Errorf("HTTPError %+v", he)
	}
	if !strings.Contains(err.Error(), "deadline comes before") {
		t.Errorf("error %q does not say why it did not retry", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"99999999", 24 * time.Hour},
		{"Sat, 01 Aug 2026 12:00:30 GMT", 30 * time.Second},
		{"Sat, 01 Aug 2026 11:59:00 GMT", 0},
		{"soon", 0},
		{"1.5", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &client{backoffBase: 100 * time.Millisecond, backoffMax: time.Second, retryAfterMax: 5 * time.Second}
	for attempt, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 80: time.Second} {
		for range 50 {
			if d := c.backoff(attempt, ErrUnavailable); d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
	if d := c.backoff(1, &HTTPError{Status: 429, RetryAfter: time.Hour}); d < 5*time.Second || d > 5500*time.Millisecond {
		t.Errorf("Retry-After 1h gave %v, want the 5s cap (+10%% jitter)", d)
	}
}

func TestTimeouts(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		script  agenttest.Script
		edit    func(*config.Agent)
		want    string // reply, when no error
		err     error
		errText string
		which   string // TimeoutError.Which
		reqs    int
	}{
		{
			name: "first token",
			script: agenttest.Stream(agenttest.Role(), agenttest.Keepalive(), agenttest.Pause(ms(50)),
				agenttest.Keepalive(), agenttest.Stall()),
			edit: func(a *config.Agent) { a.FirstTokenTimeout = ms(300); a.IdleTimeout = 5 * time.Second },
			err:  ErrTimeout, errText: "agent: first token timeout after 300ms", which: "first token", reqs: 1,
		},
		{
			// A tool at work before the first word is routine: it satisfies
			// the first-token timeout, the idle timeout still bounds silence.
			name: "tool progress counts as the first token",
			script: agenttest.Stream(agenttest.Role(), agenttest.ToolProgress("t", "l"), agenttest.Pause(ms(200)),
				agenttest.ToolProgress("t", "l"), agenttest.Pause(ms(200)), agenttest.Content("done"),
				agenttest.Finish("stop"), agenttest.Done()),
			edit: func(a *config.Agent) { a.FirstTokenTimeout = ms(150); a.IdleTimeout = 5 * time.Second },
			want: "done", reqs: 1,
		},
		{
			name:   "first token before headers",
			script: agenttest.Hang(),
			edit:   func(a *config.Agent) { a.FirstTokenTimeout = ms(200); a.ConnectTimeout = 5 * time.Second },
			err:    ErrTimeout, errText: "first token timeout after 200ms", which: "first token", reqs: 1,
		},
		{
			name:   "idle",
			script: agenttest.Stream(agenttest.Role(), agenttest.Content("a"), agenttest.Stall()),
			edit:   func(a *config.Agent) { a.IdleTimeout = ms(200) },
			err:    ErrTimeout, errText: "agent: idle timeout after 200ms", which: "idle", reqs: 1,
		},
		{
			name: "keepalives keep an idle stream alive",
			script: agenttest.Stream(agenttest.Role(), agenttest.Content("a"), agenttest.Pause(ms(150)), agenttest.Keepalive(),
				agenttest.Pause(ms(150)), agenttest.Keepalive(), agenttest.Pause(ms(150)), agenttest.Keepalive(),
				agenttest.Content("b"), agenttest.Finish("stop"), agenttest.Done()),
			edit: func(a *config.Agent) { a.IdleTimeout = ms(400) },
			want: "ab", reqs: 1,
		},
		{
			name: "total",
			script: agenttest.Stream(agenttest.Role(), agenttest.Content("a"), agenttest.Pause(ms(100)), agenttest.Content("b"),
				agenttest.Pause(ms(100)), agenttest.Content("c"), agenttest.Pause(ms(100)), agenttest.Content("d"),
				agenttest.Pause(ms(100)), agenttest.Content("e"), agenttest.Stall()),
			edit: func(a *config.Agent) { a.TotalTimeout = ms(300) },
			err:  ErrTimeout, errText: "agent: total timeout after 300ms", which: "total", reqs: 1,
		},
		{
			name:   "connect (response headers) is retried",
			script: agenttest.Hang(),
			edit:   func(a *config.Agent) { a.ConnectTimeout = ms(150); a.MaxAttempts = 2 },
			err:    ErrUnavailable, errText: "timeout awaiting response headers", reqs: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := agenttest.New(t)
			srv.Enqueue(tt.script, tt.script, tt.script)
			c := newTestClient(t, srv, "hermes", tt.edit)
			got, err := c.Complete(context.Background(), userRequest("x"), Events{})
			if tt.err == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Complete = %q, %v; want %q", got, err, tt.want)
				}
			} else {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %v, want %v containing %q", err, tt.err, tt.errText)
				}
			}
			var te *TimeoutError
			if tt.which != "" && (!errors.As(err, &te) || te.Which != tt.which) {
				t.Errorf("TimeoutError %+v, want %s", te, tt.which)
			}
			if n := len(srv.Requests()); n != tt.reqs {
				t.Errorf("%d requests, want %d", n, tt.reqs)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	addr := testnet.RefusedAddr(t)
	a, err := New(config.Agent{Kind: "openai", URL: "http://" + addr, MaxAttempts: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := a.(*client)
	c.backoffBase = time.Millisecond
	t.Cleanup(c.CloseIdleConnections)
	_, err = c.Complete(context.Background(), userRequest("x"), Events{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("error %v, want ErrUnavailable after 2 attempts", err)
	}
}

// TestCancel checks that cancelling the caller's ctx ends Complete at once,
// in every phase, without leaving goroutines behind.
func TestCancel(t *testing.T) {
	tests := []struct {
		name    string
		scripts []agenttest.Script
		// cancelAt: "delta" cancels from the first Delta callback,
		// "request" once the server saw n requests, "retry" when the
		// client starts waiting to retry.
		cancelAt string
		requests int
	}{
		{"while streaming", []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Content("a"), agenttest.Stall())}, "delta", 1},
		{"waiting for headers", []agenttest.Script{agenttest.Hang()}, "request", 1},
		{"waiting for the first token", []agenttest.Script{agenttest.Stream(agenttest.Role(), agenttest.Keepalive(), agenttest.Stall())}, "request", 1},
		{"during Retry-After", []agenttest.Script{agenttest.RateLimited("30"), agenttest.Reply("unused")}, "retry", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			srv := agenttest.New(t)
			srv.Enqueue(tt.scripts...)
			c := newTestClient(t, srv, "hermes", nil)
			ctx, cancel := context.WithCancelCause(context.Background())
			ev := Events{Delta: func(string) {
				if tt.cancelAt == "delta" {
					cancel(errors.New("user sent /stop"))
				}
			}}
			switch tt.cancelAt {
			case "request":
				go func() {
					wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer wcancel()
					_ = srv.WaitRequests(wctx, tt.requests)
					cancel(errors.New("user sent /stop"))
				}()
			case "retry":
				// The client logs a warning just before it waits.
				log := logrus.New()
				log.Out = io.Discard
				log.AddHook(hookFunc(func(e *logrus.Entry) {
					if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "retrying") {
						cancel(errors.New("user sent /stop"))
					}
				}))
				c.log = logrus.NewEntry(log)
			}
			done := make(chan error, 1)
			go func() {
				_, err := c.Complete(ctx, userRequest("x"), ev)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Complete did not return after cancel")
			}
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "user sent /stop") {
				t.Errorf("error %v, want context.Canceled with its cause", err)
			}
			if errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnavailable) {
				t.Errorf("error %v also matches a backend sentinel", err)
			}
			if n := len(srv.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			c.CloseIdleConnections()
			srv.Close()
		})
	}
}

type hookFunc func(*logrus.Entry)

func (hookFunc) Levels() []logrus.Level       { return logrus.AllLevels }
func (h hookFunc) Fire(e *logrus.Entry) error { h(e); return nil }

func TestCanceledBeforeStart(t *testing.T) {
	srv := agenttest.New(t)
	c := newTestClient(t, srv, "hermes", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Complete(ctx, userRequest("x"), Events{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}

func TestErrorsNeverContainTheKey(t *testing.T) {
	const key = "sk-super-secret-value"
	srv := agenttest.New(t)
	srv.SetKey(key)
	srv.Enqueue(
		agenttest.Error(401, "key "+key+" is revoked"),
		agenttest.Stream(agenttest.Role(), agenttest.StreamError("bad key "+key)),
	)
	c := newTestClient(t, srv, "hermes", nil)
	for range 2 {
		_, err := c.Complete(context.Background(), userRequest("x"), Events{})
		if err == nil || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("error %v: want it, redacted", err)
		}
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("sk-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent-key"), []byte("sk-cred"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	tests := []struct {
		name     string
		cfg      config.Agent
		endpoint string // "" for an error
		key      string
		errText  string
	}{
		{"echo default", config.Agent{}, "", "", ""},
		{"openai without key", config.Agent{Kind: "openai", URL: "http://127.0.0.1:9"}, "http://127.0.0.1:9/v1/chat/completions", "", ""},
		{"url with /v1/", config.Agent{Kind: "openai", URL: "http://127.0.0.1:9/api/v1/"}, "http://127.0.0.1:9/api/v1/chat/completions", "", ""},
		{"key file", config.Agent{Kind: "hermes", URL: "https://h.example", Key: secret.Ref{File: keyFile}}, "https://h.example/v1/chat/completions", "sk-file", ""},
		{"credential", config.Agent{Kind: "hermes", URL: "http://127.0.0.1:8642", Key: secret.Ref{Credential: "agent-key"}}, "http://127.0.0.1:8642/v1/chat/completions", "sk-cred", ""},
		{"unknown kind", config.Agent{Kind: "claude"}, "", "", `unknown kind "claude"`},
		{"missing url", config.Agent{Kind: "openai"}, "", "", "agent: url"},
		{"bad scheme", config.Agent{Kind: "openai", URL: "ftp://x"}, "", "", "not an http"},
		{"hermes without key", config.Agent{Kind: "hermes", URL: "http://127.0.0.1:8642"}, "", "", "required for kind hermes"},
		{"missing key file", config.Agent{Kind: "openai", URL: "http://127.0.0.1:9", Key: secret.Ref{File: filepath.Join(dir, "nope")}}, "", "", "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg, nil)
			if tt.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) || !strings.HasPrefix(err.Error(), "agent: ") {
					t.Fatalf("New error %v, want one containing %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, ok := a.(*client)
			if tt.endpoint == "" {
				if _, isEcho := a.(*echo); !isEcho {
					t.Fatalf("New gave %T, want echo", a)
				}
				return
			}
			if !ok {
				t.Fatalf("New gave %T", a)
			}
			defer c.CloseIdleConnections()
			if c.endpoint != tt.endpoint || c.key.Reveal() != tt.key {
				t.Errorf("endpoint %q key %q, want %q %q", c.endpoint, c.key.Reveal(), tt.endpoint, tt.key)
			}
			if c.firstToken != 120*time.Second || c.idle != 120*time.Second || c.total != 30*time.Minute || c.maxAttempts != 3 || c.model != "hermes-agent" {
				t.Errorf("defaults not applied: %+v", c)
			}
		})
	}
}

// TestConcurrentTurns runs turns in parallel through one client against the
// fake's default behaviour and checks each gets its own reply.
func TestConcurrentTurns(t *testing.T) {
	srv := agenttest.New(t)
	srv.SetWordDelay(time.Millisecond)
	c := newTestClient(t, srv, "hermes", nil)
	const n = 8
	release := srv.Hold()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := userRequest(fmt.Sprintf("turn %d", i))
			req.SessionID = fmt.Sprint("s", i)
			got, err := c.Complete(context.Background(), req, Events{})
			if err == nil && got != fmt.Sprintf("agent: turn %d", i) {
				err = fmt.Errorf("turn %d got %q", i, got)
			}
			errs <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.WaitActive(ctx, n); err != nil {
		t.Error(err)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if srv.MaxActive() != n {
		t.Errorf("MaxActive %d, want %d", srv.MaxActive(), n)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`, "bad key (invalid_api_key)"},
		{`{"error":{"message":"bad key","type":"invalid_request_error","code":null}}`, "bad key (invalid_request_error)"},
		{`{"error":{"message":"m","code":429}}`, "m (429)"},
		{`{"error":"plain string"}`, "plain string"},
		{`{"error":{}}`, "{}"},
		{`{"message":"top-level message"}`, "top-level message"},
		{`{"detail":"Not authenticated"}`, "Not authenticated"},
		{`{"detail":[{"loc":["body"],"msg":"field required"}]}`, `{"detail":[{"loc":["body"],"msg":"field required"}]}`},
		{`upstream connect error`, "upstream connect error"},
		{``, ""},
	}
	for _, tt := range tests {
		if got := errorText([]byte(tt.in)); got != tt.want {
			t.Errorf("errorText(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	long := strings.Repeat("é", 400)
	got := sanitize("  line1\nline2\x00 key123 ", "key123")
	if got != "line1 line2  [redacted]" {
		t.Errorf("sanitize = %q", got)
	}
	if s := sanitize(long, ""); len(s) > 310 || !strings.HasSuffix(s, "…") || !utf8Valid(s) {
		t.Errorf("sanitize(long) = %d bytes, %q…", len(s), s[:10])
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestMessageContentParts(t *testing.T) {
	plain, err := json.Marshal(Message{Role: RoleUser, Content: "hi"})
	if err != nil || string(plain) != `{"role":"user","content":"hi"}` {
		t.Fatalf("text-only message changed: %s %v", plain, err)
	}
	multi, err := json.Marshal(Message{Role: RoleUser, Content: "look [image]", Parts: []ContentPart{
		{Type: "text", Text: "look"}, {Type: "image_url", ImageURL: &ImageURL{URL: "data:image/png;base64,AA=="}}}})
	want := `{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}`
	if err != nil || string(multi) != want {
		t.Fatalf("multi-part message: %s %v", multi, err)
	}
}
