// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

var hello = webhooktest.Message{ConversationID: "conv-1", UserID: "u-1", Text: "hello"}.JSON()

// post sends body with exactly the given headers.
func post(t testing.TB, url string, body []byte, hdr map[string]string) *webhooktest.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := webhooktest.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp
}

func standardHeaders(t testing.TB, secret, id string, ts time.Time, body []byte) map[string]string {
	t.Helper()
	sig, err := webhooktest.SignStandard(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"webhook-id": id, "webhook-timestamp": fmt.Sprint(ts.Unix()), "webhook-signature": sig}
}

func TestInboundSignature(t *testing.T) {
	now := time.Now()
	std := func(secret string, ts time.Time) map[string]string {
		return standardHeaders(t, secret, "msg_1", ts, hello)
	}
	gh := func(secret string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": webhooktest.SignGitHub(secret, hello), "X-GitHub-Delivery": "gh-1"}
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	valid := std(testSecret, now)["webhook-signature"]
	old := std(otherSecret, now)["webhook-signature"]
	tests := []struct {
		name   string
		scheme string // "" = any
		hdr    map[string]string
		want   int
	}{
		{name: "standard valid", hdr: std(testSecret, now), want: 202},
		{name: "github valid", hdr: gh(testSecret), want: 202},
		{name: "standard wrong secret", hdr: std(otherSecret, now), want: 401},
		{name: "github wrong secret", hdr: gh(otherSecret), want: 401},
		{name: "missing", hdr: map[string]string{"webhook-id": "msg_1"}, want: 401},
		{name: "rotated: old and new", hdr: merge(std(testSecret, now), map[string]string{"webhook-signature": old + " " + valid}), want: 202},
		{name: "rotated: new and old", hdr: merge(std(testSecret, now), map[string]string{"webhook-signature": valid + " " + old}), want: 202},
		{name: "rotated: several wrong", hdr: merge(std(testSecret, now), map[string]string{"webhook-signature": old + " " + old + " v1,AAAA"}), want: 401},
		{name: "expired timestamp", hdr: std(testSecret, now.Add(-6*time.Minute)), want: 401},
		{name: "timestamp from the future", hdr: std(testSecret, now.Add(6*time.Minute)), want: 401},
		{name: "timestamp 4m old", hdr: std(testSecret, now.Add(-4*time.Minute)), want: 202},
		{name: "signed id replaced", hdr: merge(std(testSecret, now), map[string]string{"webhook-id": "msg_2"}), want: 401},
		{name: "wrong scheme v2", hdr: merge(std(testSecret, now), map[string]string{"webhook-signature": "v2," + valid[3:]}), want: 401},
		{name: "wrong scheme sha1 header", hdr: map[string]string{"X-Hub-Signature": "sha1=0000000000000000000000000000000000000000"}, want: 401},
		{name: "wrong scheme sha1 value", hdr: map[string]string{"X-Hub-Signature-256": "sha1=0000000000000000000000000000000000000000"}, want: 401},
		{name: "any: standard wins over github", hdr: merge(std(testSecret, now), gh(otherSecret)), want: 202},
		{name: "any: bad standard not rescued by github", hdr: merge(std(otherSecret, now), gh(testSecret)), want: 401},
		{name: "github-only scheme refuses standard", scheme: "github", hdr: std(testSecret, now), want: 401},
		{name: "github-only scheme accepts github", scheme: "github", hdr: gh(testSecret), want: 202},
		{name: "standard-only scheme refuses github", scheme: "standard", hdr: gh(testSecret), want: 401},
		{name: "standard-only scheme accepts standard", scheme: "standard", hdr: std(testSecret, now), want: 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, withConfig(func(c *webhook.Config) {
				if tt.scheme != "" {
					c.Signature = tt.scheme
				}
			}))
			resp := post(t, h.url, hello, tt.hdr)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.want)
			}
			stored := len(h.inbox.Messages())
			if tt.want == 202 {
				if stored != 1 || h.metrics.Rejections(webhook.RejectBadSignature) != 0 {
					t.Fatalf("accepted: stored %d, rejections %v", stored, rejections(h.metrics))
				}
				return
			}
			if h.inbox.Calls() != 0 || h.metrics.Rejections(webhook.RejectBadSignature) != 1 {
				t.Fatalf("rejected: inbox calls %d, rejections %v", h.inbox.Calls(), rejections(h.metrics))
			}
			if !strings.HasPrefix(resp.Error, "invalid signature") {
				t.Fatalf("error %q", resp.Error)
			}
			checkRejectLog(t, h)
		})
	}
}

// checkRejectLog asserts the warning of a bad signature: remote address
// present, neither the secret nor the body in it.
func checkRejectLog(t *testing.T, h *harness) {
	t.Helper()
	var found *logrus.Entry
	for _, e := range h.logs.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "rejected") {
			found = e
		}
	}
	if found == nil {
		t.Fatalf("no warning logged; entries: %v", h.logs.AllEntries())
	}
	remote, _ := found.Data["remote"].(string)
	if !strings.HasPrefix(remote, "127.0.0.1:") {
		t.Fatalf("warning without the remote address: %v", found.Data)
	}
	line, _ := found.String()
	for _, leak := range []string{testSecret, testSecret[6:], "hello", "conv-1"} {
		if strings.Contains(line, leak) {
			t.Fatalf("warning %q contains %q", line, leak)
		}
	}
}

func TestInboundRawStandardSecret(t *testing.T) {
	h := start(t, withConfig(func(c *webhook.Config) { c.Secret = secretFile(t, "plain text key") }))
	if r := post(t, h.url, hello, standardHeaders(t, "plain text key", "msg_1", time.Now(), hello)); r.StatusCode != 202 {
		t.Fatalf("raw-secret standard: %d %s", r.StatusCode, r.Body)
	}
	if r := post(t, h.url, hello, map[string]string{"X-Hub-Signature-256": webhooktest.SignGitHub("plain text key", hello)}); r.StatusCode != 202 {
		t.Fatalf("raw-secret github: %d %s", r.StatusCode, r.Body)
	}
}

func TestInboundMapping(t *testing.T) {
	h := start(t, withConfig(func(c *webhook.Config) { c.ReplyURLAllow = []string{"https://chat.example.com/replies/"} }))
	body := webhooktest.Message{ConversationID: "room-7", UserID: "alice", Text: "hi there", UserName: "Alice",
		ThreadID: "t-9", ChatType: "group", ReplyURL: "https://chat.example.com/replies/room-7?token=x"}.JSON()
	before := time.Now()
	resp, err := webhooktest.Post(ctxT(t), h.url, testSecret, body, "msg_map")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 202 || resp.ID != "msg_map" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %q %s", resp.StatusCode, resp.ID, resp.Body)
	}
	m := h.inbox.Messages()[0]
	want := message.Inbound{Platform: "hooks", EventID: "msg_map", ChatID: "room-7", ChatType: message.ChatGroup,
		ThreadID: "t-9", SenderID: "alice", SenderName: "Alice", MessageID: "msg_map", Text: "hi there"}
	if m.Platform != want.Platform || m.EventID != want.EventID || m.ChatID != want.ChatID || m.ChatType != want.ChatType ||
		m.ThreadID != want.ThreadID || m.SenderID != want.SenderID || m.SenderName != want.SenderName ||
		m.MessageID != want.MessageID || m.Text != want.Text {
		t.Fatalf("stored %+v\nwant   %+v", *m, want)
	}
	if got := m.Meta[webhook.MetaReplyURL]; got != "https://chat.example.com/replies/room-7?token=x" || len(m.Meta) != 1 {
		t.Fatalf("meta %v", m.Meta)
	}
	if m.ReceivedAt.Before(before.Add(-time.Second)) || m.ReceivedAt.After(time.Now()) {
		t.Fatalf("received_at %v", m.ReceivedAt)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}

	// Defaults: chat_type dm, no meta without reply_url.
	if r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, hello, "msg_dm"); r.StatusCode != 202 {
		t.Fatalf("dm: %d %s", r.StatusCode, r.Body)
	}
	if m := h.inbox.Messages()[1]; m.ChatType != message.ChatDirect || m.Meta != nil {
		t.Fatalf("defaults: %+v", *m)
	}
}

func TestInboundDedupe(t *testing.T) {
	tests := []struct {
		name   string
		send   func(t *testing.T, url string, body []byte) *webhooktest.Response
		wantID string
	}{
		{"webhook-id", func(t *testing.T, url string, body []byte) *webhooktest.Response {
			// A redelivery is signed afresh (new timestamp), same id.
			r, err := webhooktest.Post(ctxT(t), url, testSecret, body, "msg_redeliver")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, "msg_redeliver"},
		{"X-GitHub-Delivery", func(t *testing.T, url string, body []byte) *webhooktest.Response {
			r, err := webhooktest.PostGitHub(ctxT(t), url, testSecret, body, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{"Idempotency-Key (sf-string)", func(t *testing.T, url string, body []byte) *webhooktest.Response {
			return post(t, url, body, map[string]string{"X-Hub-Signature-256": webhooktest.SignGitHub(testSecret, body), "Idempotency-Key": `"key-1"`})
		}, "key-1"},
		{"derived from the body", func(t *testing.T, url string, body []byte) *webhooktest.Response {
			r, err := webhooktest.PostGitHub(ctxT(t), url, testSecret, body, "")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, "sha256:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t)
			first := tt.send(t, h.url, hello)
			second := tt.send(t, h.url, hello)
			if first.StatusCode != 202 || second.StatusCode != 202 {
				t.Fatalf("statuses %d, %d; want 202 both", first.StatusCode, second.StatusCode)
			}
			if first.ID != second.ID || !strings.HasPrefix(first.ID, tt.wantID) {
				t.Fatalf("ids %q, %q; want equal, starting %q", first.ID, second.ID, tt.wantID)
			}
			if n, calls := len(h.inbox.Messages()), h.inbox.Calls(); n != 1 || calls != 2 {
				t.Fatalf("stored %d (calls %d), want 1 (2)", n, calls)
			}
		})
	}

	t.Run("priority", func(t *testing.T) {
		h := start(t)
		hdr := standardHeaders(t, testSecret, "msg_first", time.Now(), hello)
		hdr["Idempotency-Key"] = "second"
		hdr["X-GitHub-Delivery"] = "third"
		if r := post(t, h.url, hello, hdr); r.ID != "msg_first" {
			t.Fatalf("id %q, want webhook-id", r.ID)
		}
		gh := map[string]string{"X-Hub-Signature-256": webhooktest.SignGitHub(testSecret, hello), "Idempotency-Key": "second", "X-GitHub-Delivery": "third"}
		if r := post(t, h.url, hello, gh); r.ID != "second" {
			t.Fatalf("id %q, want Idempotency-Key", r.ID)
		}
	})
	t.Run("derived ids differ with the body", func(t *testing.T) {
		h := start(t)
		other := webhooktest.Message{ConversationID: "conv-1", UserID: "u-1", Text: "hello again"}.JSON()
		a, _ := webhooktest.PostGitHub(ctxT(t), h.url, testSecret, hello, "")
		b, _ := webhooktest.PostGitHub(ctxT(t), h.url, testSecret, other, "")
		if a.ID == b.ID || len(h.inbox.Messages()) != 2 {
			t.Fatalf("ids %q %q, stored %d", a.ID, b.ID, len(h.inbox.Messages()))
		}
	})
	t.Run("bad delivery id", func(t *testing.T) {
		h := start(t)
		for _, id := range []string{strings.Repeat("x", 257), "tab\there", "ünïcode"} {
			hdr := map[string]string{"X-Hub-Signature-256": webhooktest.SignGitHub(testSecret, hello), "X-GitHub-Delivery": id}
			if r := post(t, h.url, hello, hdr); r.StatusCode != 400 {
				t.Errorf("delivery id %q: %d, want 400", id, r.StatusCode)
			}
		}
	})
}

func TestInboundBody(t *testing.T) {
	long := strings.Repeat("x", message.MaxTextBytes+1)
	tests := []struct {
		name   string
		body   string
		want   int
		reason string
		errHas string
	}{
		{"not json", `hello`, 400, webhook.RejectMalformed, "syntax error"},
		{"truncated json", `{"conversation_id":"c","user_id":"u","text":"t"`, 400, webhook.RejectMalformed, "unexpected end"},
		{"trailing garbage", `{"conversation_id":"c","user_id":"u","text":"t"} x`, 400, webhook.RejectMalformed, ""},
		{"array", `[1,2]`, 400, webhook.RejectMalformed, "JSON object"},
		{"null", `null`, 400, webhook.RejectMalformed, "conversation_id is required"},
		{"empty", ``, 400, webhook.RejectMalformed, ""},
		{"number text", `{"conversation_id":"c","user_id":"u","text":5}`, 400, webhook.RejectMalformed, "text must be a string"},
		{"missing user", `{"conversation_id":"c","text":"t"}`, 400, webhook.RejectMalformed, "user_id is required"},
		{"missing text", `{"conversation_id":"c","user_id":"u"}`, 400, webhook.RejectMalformed, "text is required"},
		{"blank text", `{"conversation_id":"c","user_id":"u","text":" \n"}`, 400, webhook.RejectMalformed, "text is required"},
		{"chat_type", `{"conversation_id":"c","user_id":"u","text":"t","chat_type":"p2p"}`, 400, webhook.RejectMalformed, "chat_type"},
		{"control in id", `{"conversation_id":"c\u0000","user_id":"u","text":"t"}`, 400, webhook.RejectMalformed, "control"},
		{"long id", `{"conversation_id":"` + strings.Repeat("c", 257) + `","user_id":"u","text":"t"}`, 400, webhook.RejectMalformed, "limit 256"},
		{"reply_url scheme", `{"conversation_id":"c","user_id":"u","text":"t","reply_url":"file:///etc/passwd"}`, 400, webhook.RejectMalformed, "reply_url"},
		{"text too long", `{"conversation_id":"c","user_id":"u","text":"` + long + `"}`, 413, webhook.RejectTooLarge, "text is"},
		{"unknown fields ignored", `{"conversation_id":"c","user_id":"u","text":"t","extra":{"a":[1]}}`, 202, "", ""},
		{"channel", `{"conversation_id":"c","user_id":"u","text":"t","chat_type":"channel"}`, 202, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t)
			r, err := webhooktest.Post(ctxT(t), h.url, testSecret, []byte(tt.body), "")
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != tt.want || !strings.Contains(r.Error, tt.errHas) {
				t.Fatalf("got %d %q, want %d containing %q", r.StatusCode, r.Error, tt.want, tt.errHas)
			}
			if tt.want != 202 {
				if got := rejections(h.metrics); len(got) != 1 || got[tt.reason] != 1 {
					t.Fatalf("rejections %v, want one %s", got, tt.reason)
				}
				if h.inbox.Calls() != 0 {
					t.Fatal("rejected request reached the inbox")
				}
			}
		})
	}
}

func TestInboundBodyLimit(t *testing.T) {
	h := start(t, withConfig(func(c *webhook.Config) { c.MaxBodyBytes = 1024 }))
	pad := webhooktest.Message{ConversationID: "c", UserID: "u", Text: strings.Repeat("y", 1100)}.JSON()
	fits := webhooktest.Message{ConversationID: "c", UserID: "u", Text: strings.Repeat("y", 900)}.JSON()

	// Declared too large: refused before reading.
	r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, pad, "")
	if r.StatusCode != 413 {
		t.Fatalf("Content-Length over the limit: %d", r.StatusCode)
	}
	// Chunked (no Content-Length): cut off by MaxBytesReader.
	req, _ := webhooktest.NewRequest(ctxT(t), h.url, testSecret, pad, "")
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(pad)))
	req.ContentLength = -1
	r, err := webhooktest.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 413 {
		t.Fatalf("chunked over the limit: %d", r.StatusCode)
	}
	if got := h.metrics.Rejections(webhook.RejectTooLarge); got != 2 {
		t.Fatalf("too_large counted %d, want 2", got)
	}
	// Exactly at the limit is fine.
	if r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, fits, ""); r.StatusCode != 202 {
		t.Fatalf("within the limit: %d %s", r.StatusCode, r.Body)
	}
	if h.inbox.Calls() != 1 {
		t.Fatalf("inbox calls %d", h.inbox.Calls())
	}
}

// A sender that stops sending half-way gets 408 once request_timeout has
// passed, instead of holding a handler forever.
func TestInboundReadTimeout(t *testing.T) {
	h := start(t, withConfig(func(c *webhook.Config) { c.RequestTimeout = 200 * time.Millisecond }))
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"conv", h.a.Path())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	if h.metrics.Rejections(webhook.RejectReadError) != 1 || h.inbox.Calls() != 0 {
		t.Fatalf("rejections %v, inbox calls %d", rejections(h.metrics), h.inbox.Calls())
	}
}

func TestInboundInboxErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       int
		retryAfter string
	}{
		{"stopping", fmt.Errorf("store: %w", adapter.ErrStopping), 503, "1"},
		{"store unavailable", fmt.Errorf("dispatch: %w", adapter.ErrUnavailable), 503, "5"},
		{"invalid", fmt.Errorf("store: %w: nope", message.ErrInvalid), 400, ""},
		{"disk full", errors.New("store: disk I/O error"), 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t)
			h.inbox.SetFail(tt.err)
			r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, hello, "msg_1")
			if r.StatusCode != tt.want || r.Header.Get("Retry-After") != tt.retryAfter {
				t.Fatalf("got %d Retry-After %q, want %d %q", r.StatusCode, r.Header.Get("Retry-After"), tt.want, tt.retryAfter)
			}
			if r.ID != "" {
				t.Fatal("a failed delivery answered with an id")
			}
			// The sender retries; once the store works the retry is stored.
			h.inbox.SetFail(nil)
			if r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, hello, "msg_1"); r.StatusCode != 202 {
				t.Fatalf("retry: %d", r.StatusCode)
			}
		})
	}

	t.Run("slow store bounded by request_timeout", func(t *testing.T) {
		h := start(t, withConfig(func(c *webhook.Config) { c.RequestTimeout = 300 * time.Millisecond }))
		release := h.inbox.Block()
		defer release()
		r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, hello, "msg_1")
		if r.StatusCode != 500 {
			t.Fatalf("got %d, want 500", r.StatusCode)
		}
	})
}

func TestInboundReplyURL(t *testing.T) {
	body := func(u string) []byte {
		return webhooktest.Message{ConversationID: "c", UserID: "u", Text: "t", ReplyURL: u}.JSON()
	}
	tests := []struct {
		name     string
		replyURL string
		allow    []string
		msgURL   string
		want     int
	}{
		{"nothing configured: refused", "", nil, "http://127.0.0.1:9/x", 400},
		{"under reply_url", "https://a.example.com/hooks/", nil, "https://a.example.com/hooks/room/1", 202},
		{"equal to reply_url", "https://a.example.com/hooks", nil, "https://a.example.com/hooks", 202},
		{"under allow prefix", "", []string{"https://b.example.com/r"}, "https://b.example.com/r/42?sig=1", 202},
		{"prefix needs a segment boundary", "", []string{"https://b.example.com/r"}, "https://b.example.com/rogue", 400},
		{"host suffix trick", "", []string{"https://b.example.com"}, "https://b.example.com.evil.test/", 400},
		{"userinfo trick", "", []string{"https://b.example.com"}, "https://b.example.com@evil.test/", 400},
		{"other port", "", []string{"https://b.example.com/"}, "https://b.example.com:8443/", 400},
		{"default port explicit", "", []string{"https://b.example.com/"}, "https://b.example.com:443/x", 202},
		{"scheme downgrade", "", []string{"https://b.example.com/"}, "http://b.example.com/", 400},
		{"dot segments", "", []string{"https://b.example.com/r/"}, "https://b.example.com/r/../admin", 400},
		{"encoded dot segments", "", []string{"https://b.example.com/r/"}, "https://b.example.com/r/%2e%2e/admin", 400},
		{"metadata address", "", []string{"https://b.example.com/"}, "http://169.254.169.254/latest/meta-data", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, withConfig(func(c *webhook.Config) { c.ReplyURL, c.ReplyURLAllow = tt.replyURL, tt.allow }))
			r, _ := webhooktest.Post(ctxT(t), h.url, testSecret, body(tt.msgURL), "")
			if r.StatusCode != tt.want {
				t.Fatalf("got %d %q, want %d", r.StatusCode, r.Error, tt.want)
			}
			if tt.want == 400 && rejections(h.metrics)[webhook.RejectReplyURLDenied]+rejections(h.metrics)[webhook.RejectMalformed] != 1 {
				t.Fatalf("rejections %v", rejections(h.metrics))
			}
		})
	}
}

func TestInboundNotLive(t *testing.T) {
	h := newAdapter(t)
	srv := newServer(t, adaptertest.Handler(t, h.a))
	url := srv + h.a.Path()

	check := func(when string) {
		t.Helper()
		r, _ := webhooktest.Post(ctxT(t), url, testSecret, hello, "msg_1")
		if r.StatusCode != 503 || r.Header.Get("Retry-After") != "1" {
			t.Fatalf("%s: %d Retry-After %q, want 503 1", when, r.StatusCode, r.Header.Get("Retry-After"))
		}
	}
	check("before Start")
	if err := h.a.Start(ctxT(t), h.inbox); err != nil {
		t.Fatal(err)
	}
	if r, _ := webhooktest.Post(ctxT(t), url, testSecret, hello, "msg_1"); r.StatusCode != 202 {
		t.Fatalf("started: %d", r.StatusCode)
	}
	if err := h.a.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	check("after Stop")
	if h.inbox.Calls() != 1 {
		t.Fatalf("inbox calls %d, want 1", h.inbox.Calls())
	}

	// Only POST is routed.
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	if r, err := webhooktest.Do(req); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", r, err)
	}
}

// Rejections are logged at most once a second; the metric counts all.
func TestInboundRejectLogRateLimited(t *testing.T) {
	h := start(t)
	for i := 0; i < 20; i++ {
		post(t, h.url, hello, nil)
	}
	warnings := 0
	for _, e := range h.logs.AllEntries() {
		if e.Level == logrus.WarnLevel {
			warnings++
		}
	}
	if h.metrics.Rejections(webhook.RejectBadSignature) != 20 || warnings < 1 || warnings > 2 {
		t.Fatalf("counted %d, logged %d", h.metrics.Rejections(webhook.RejectBadSignature), warnings)
	}
}

func newServer(t testing.TB, hnd http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hnd, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}
