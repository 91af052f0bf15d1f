// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

// sender builds an adapter replying to rcv with outSecret.
func sender(t *testing.T, replyURL string, opts ...harnessOpt) *webhook.Adapter {
	t.Helper()
	opts = append([]harnessOpt{withConfig(func(c *webhook.Config) {
		c.ReplyURL = replyURL
		c.OutboundSecret = secretFile(t, outSecret)
	})}, opts...)
	return newAdapter(t, opts...).a
}

// reply is the Outbound the core would build for part of a reply to the
// inbound event "evt-1".
func reply(part, parts int, text string) *message.Outbound {
	in := message.Inbound{Platform: "hooks", EventID: "evt-1", ChatID: "conv-1", ChatType: message.ChatGroup,
		ThreadID: "t-1", SenderID: "alice", MessageID: "evt-1", Text: "question"}
	out := in.ReplyTo()
	out.Text, out.Part, out.Parts = text, part, parts
	out.IdempotencyKey = message.IdempotencyKey(in.Platform, in.EventID, part)
	return &out
}

func sendCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendDelivers(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, webhooktest.WithSecret(outSecret))
	a := sender(t, rcv.URL)
	msg := reply(2, 3, "the answer is 42")
	before := time.Now()
	res, err := a.Send(sendCtx(t, 5*time.Second), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.MessageID != "rcv-1" {
		t.Fatalf("MessageID %q, want the receiver's id rcv-1", res.MessageID)
	}
	got := rcv.Delivered()
	want := webhooktest.Reply{ID: msg.IdempotencyKey, ConversationID: "conv-1", UserID: "alice", ThreadID: "t-1",
		Text: "the answer is 42", Part: 2, Parts: 3, InReplyTo: "evt-1",
		IdempotencyKey: msg.IdempotencyKey, WebhookID: msg.IdempotencyKey}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("delivered %+v\nwant      %+v", got, want)
	}
	req := rcv.Requests()[0]
	if req.SignatureErr != nil || req.Header.Get("webhook-signature") == "" {
		t.Fatalf("signature: %v %q", req.SignatureErr, req.Header.Get("webhook-signature"))
	}
	ts, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil || ts < before.Unix() || ts > time.Now().Unix() {
		t.Fatalf("webhook-timestamp %q", req.Header.Get("webhook-timestamp"))
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestSendUnsigned(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	a := newAdapter(t, withConfig(func(c *webhook.Config) { c.ReplyURL = rcv.URL })).a
	if _, err := a.Send(sendCtx(t, 5*time.Second), reply(1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	if h := rcv.Requests()[0].Header; h.Get("webhook-signature") != "" || h.Get("webhook-id") == "" {
		t.Fatalf("headers %v", h)
	}
}

func TestSendClassification(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		step       webhooktest.Step
		want       []error
		notWant    []error
		retryAfter time.Duration // 0: no RetryAfterError
		slack      time.Duration
	}{
		{name: "500", step: webhooktest.Respond(500), want: []error{adapter.ErrTemporary}},
		{name: "502", step: webhooktest.Respond(502), want: []error{adapter.ErrTemporary}},
		{name: "503 Retry-After seconds", step: webhooktest.RespondRetryAfter(503, "7"), want: []error{adapter.ErrTemporary}, retryAfter: 7 * time.Second},
		{name: "429", step: webhooktest.Respond(429), want: []error{adapter.ErrRateLimited}},
		{name: "429 Retry-After seconds", step: webhooktest.RespondRetryAfter(429, "2"), want: []error{adapter.ErrRateLimited}, retryAfter: 2 * time.Second},
		{name: "429 Retry-After date", step: webhooktest.RespondRetryAfter(429, now.Add(30*time.Second).UTC().Format(http.TimeFormat)),
			want: []error{adapter.ErrRateLimited}, retryAfter: 30 * time.Second, slack: 2 * time.Second},
		{name: "429 Retry-After garbage", step: webhooktest.RespondRetryAfter(429, "soon"), want: []error{adapter.ErrRateLimited}},
		{name: "429 Retry-After huge", step: webhooktest.RespondRetryAfter(429, "99999999999999999999"), want: []error{adapter.ErrRateLimited}, retryAfter: webhook.MaxRetryAfter},
		{name: "408", step: webhooktest.Respond(408), want: []error{adapter.ErrTemporary}},
		{name: "409 key in progress", step: webhooktest.Respond(409), want: []error{adapter.ErrTemporary}},
		{name: "401", step: webhooktest.RejectCredentials(), want: []error{adapter.ErrPermanent, adapter.ErrUnauthorized}},
		{name: "403", step: webhooktest.Respond(403), want: []error{adapter.ErrPermanent, adapter.ErrUnauthorized}},
		{name: "400", step: webhooktest.Respond(400), want: []error{adapter.ErrPermanent}, notWant: []error{adapter.ErrUnauthorized}},
		{name: "404", step: webhooktest.Respond(404), want: []error{adapter.ErrPermanent}},
		{name: "422", step: webhooktest.Respond(422), want: []error{adapter.ErrPermanent}},
		{name: "redirect not followed", step: webhooktest.Respond(307), want: []error{adapter.ErrPermanent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := webhooktest.NewReceiver(t, webhooktest.WithSecret(outSecret))
			rcv.Script(tt.step)
			a := sender(t, rcv.URL)
			_, err := a.Send(sendCtx(t, 5*time.Second), reply(1, 1, "x"))
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Fatalf("Send error %v, want errors.Is %v", err, w)
				}
			}
			for _, w := range append(tt.notWant, adapter.ErrAmbiguous) {
				if errors.Is(err, w) {
					t.Fatalf("Send error %v is %v", err, w)
				}
			}
			d, ok := adapter.RetryAfter(err)
			switch {
			case tt.retryAfter == 0 && ok:
				t.Fatalf("Send error carries Retry-After %v, want none", d)
			case tt.retryAfter != 0 && (!ok || d > tt.retryAfter || d < tt.retryAfter-tt.slack):
				t.Fatalf("Retry-After %v (%v), want %v (-%v)", d, ok, tt.retryAfter, tt.slack)
			}
			if !strings.HasPrefix(err.Error(), "webhook: POST ") && !strings.Contains(err.Error(), "webhook: POST ") {
				t.Fatalf("error %q lacks the component prefix", err)
			}
			if len(rcv.Delivered()) != 0 {
				t.Fatal("a failed attempt was delivered")
			}
		})
	}
}

// The core's retry loop against the scripted sequence of the issue: one
// logical reply, three attempts, delivered once.
func TestSendScriptedSequence(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, webhooktest.WithSecret(outSecret))
	rcv.Script(webhooktest.Respond(500), webhooktest.RespondRetryAfter(429, "1"), webhooktest.Accept())
	a := sender(t, rcv.URL)
	msg := reply(1, 1, "hello")
	var errs []error
	for range 3 {
		_, err := a.Send(sendCtx(t, 5*time.Second), msg)
		errs = append(errs, err)
		if err == nil {
			break
		}
		if !adapter.Retryable(err) {
			t.Fatalf("attempt %d: %v not retryable", len(errs), err)
		}
	}
	if len(errs) != 3 || !errors.Is(errs[0], adapter.ErrTemporary) || !errors.Is(errs[1], adapter.ErrRateLimited) || errs[2] != nil {
		t.Fatalf("attempts: %v", errs)
	}
	if d, _ := adapter.RetryAfter(errs[1]); d != time.Second {
		t.Fatalf("Retry-After %v", d)
	}
	reqs := rcv.Requests()
	for _, r := range reqs {
		if r.Header.Get("webhook-id") != msg.IdempotencyKey || r.Header.Get("Idempotency-Key") != msg.IdempotencyKey {
			t.Fatalf("attempt headers differ: %v", r.Header)
		}
	}
	if len(rcv.Delivered()) != 1 || rcv.Duplicates() != 0 {
		t.Fatalf("delivered %d, duplicates %d", len(rcv.Delivered()), rcv.Duplicates())
	}
}

func TestSendRefused(t *testing.T) {
	a := sender(t, webhooktest.RefusingURL(t))
	_, err := a.Send(sendCtx(t, 5*time.Second), reply(1, 1, "x"))
	if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("Send to a closed port: %v, want ErrTemporary (nothing was sent)", err)
	}
}

// After the request was written, silence or a dropped connection leaves
// the outcome unknown: ErrAmbiguous, and the retry the core then makes is
// recognised by the receiver, so the reply is delivered exactly once.
func TestSendAmbiguous(t *testing.T) {
	tests := []struct {
		name          string
		step          webhooktest.Step
		wantDuplicate int
	}{
		{"blackhole", webhooktest.Blackhole(), 0},
		{"blackhole after delivery", webhooktest.Blackhole().AfterDelivery(), 1},
		{"abrupt close", webhooktest.Close(), 0},
		{"abrupt close after delivery", webhooktest.Close().AfterDelivery(), 1},
		{"500 after delivery", webhooktest.Respond(500).AfterDelivery(), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := webhooktest.NewReceiver(t, webhooktest.WithSecret(outSecret))
			rcv.Script(tt.step)
			a := sender(t, rcv.URL)
			msg := reply(1, 1, "once only")
			start := time.Now()
			_, err := a.Send(sendCtx(t, 300*time.Millisecond), msg)
			if tt.step.String() == "respond 500 after delivery" {
				if !errors.Is(err, adapter.ErrTemporary) {
					t.Fatalf("first attempt: %v", err)
				}
			} else if !errors.Is(err, adapter.ErrAmbiguous) || !adapter.Retryable(err) {
				t.Fatalf("first attempt: %v, want a retryable ErrAmbiguous", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Send took %v with a 300ms context", d)
			}
			if _, err := a.Send(sendCtx(t, 5*time.Second), msg); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if n := len(rcv.Delivered()); n != 1 || rcv.Duplicates() != tt.wantDuplicate {
				t.Fatalf("delivered %d, duplicates %d; want 1, %d", n, rcv.Duplicates(), tt.wantDuplicate)
			}
		})
	}
	t.Run("deadline error kept", func(t *testing.T) {
		rcv := webhooktest.NewReceiver(t)
		rcv.Script(webhooktest.Blackhole())
		a := sender(t, rcv.URL)
		_, err := a.Send(sendCtx(t, 100*time.Millisecond), reply(1, 1, "x"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v does not wrap context.DeadlineExceeded", err)
		}
	})
}

func TestSendWrongOutboundSecret(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, webhooktest.WithSecret(otherSecret))
	a := sender(t, rcv.URL)
	_, err := a.Send(sendCtx(t, 5*time.Second), reply(1, 1, "x"))
	if !errors.Is(err, adapter.ErrUnauthorized) || adapter.Retryable(err) {
		t.Fatalf("Send with a secret the receiver rejects: %v", err)
	}
	if r := rcv.Requests(); len(r) != 1 || r[0].SignatureErr == nil {
		t.Fatalf("receiver saw %+v", r)
	}
}

func TestSendTarget(t *testing.T) {
	def := webhooktest.NewReceiver(t)
	perMsg := webhooktest.NewReceiver(t)
	a := sender(t, def.URL, withConfig(func(c *webhook.Config) { c.ReplyURLAllow = []string{perMsg.URL} }))

	msg := reply(1, 1, "to the message's reply_url")
	msg.Meta = map[string]string{webhook.MetaReplyURL: perMsg.URL + "/room-1?sig=abc"}
	if _, err := a.Send(sendCtx(t, 5*time.Second), msg); err != nil {
		t.Fatal(err)
	}
	if len(perMsg.Delivered()) != 1 || len(def.Requests()) != 0 {
		t.Fatalf("per-message URL: %d there, %d at the default", len(perMsg.Delivered()), len(def.Requests()))
	}
	if _, err := a.Send(sendCtx(t, 5*time.Second), reply(1, 1, "to the default")); err != nil {
		t.Fatal(err)
	}
	if len(def.Delivered()) != 1 {
		t.Fatal("default reply_url not used")
	}

	// A reply_url stored before the allow list was narrowed (reload).
	msg.Meta[webhook.MetaReplyURL] = "http://127.0.0.1:1/elsewhere"
	if _, err := a.Send(sendCtx(t, 5*time.Second), msg); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("disallowed reply_url: %v", err)
	}
	msg.Meta[webhook.MetaReplyURL] = "gopher://x"
	if _, err := a.Send(sendCtx(t, 5*time.Second), msg); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("invalid reply_url: %v", err)
	}

	none := newAdapter(t).a
	_, err := none.Send(sendCtx(t, 5*time.Second), reply(1, 1, "x"))
	if !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "no reply_url") {
		t.Fatalf("no reply_url: %v", err)
	}
	if _, err := none.Send(sendCtx(t, time.Second), nil); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("nil message: %v", err)
	}
}

// Reply URLs may carry tokens in their query and in their path (Discord and
// Slack incoming webhooks); errors, which reach logs and /status, show
// scheme and host only.
func TestSendErrorsHideTokens(t *testing.T) {
	const token = "s3cr3t-token"
	refused := strings.TrimSuffix(webhooktest.RefusingURL(t), "/reply")
	tests := []struct {
		name string
		path string            // with the token
		step *webhooktest.Step // nil: nothing listens
		want error
	}{
		{"query, 500", "/reply?token=" + token, ptr(webhooktest.Respond(500)), adapter.ErrTemporary},
		{"query, refused", "/reply?token=" + token, nil, adapter.ErrTemporary},
		{"discord path, 404", "/api/webhooks/123456/" + token, ptr(webhooktest.Respond(404)), adapter.ErrPermanent},
		{"slack path, 401", "/services/T0/B0/" + token, ptr(webhooktest.RejectCredentials()), adapter.ErrUnauthorized},
		{"path, 429", "/api/webhooks/123456/" + token, ptr(webhooktest.RespondRetryAfter(429, "5")), adapter.ErrRateLimited},
		{"path, no answer", "/api/webhooks/123456/" + token, ptr(webhooktest.Blackhole()), adapter.ErrAmbiguous},
		{"path, refused", "/api/webhooks/123456/" + token, nil, adapter.ErrTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := refused
			if tt.step != nil {
				rcv := webhooktest.NewReceiver(t)
				rcv.Script(*tt.step)
				host = strings.TrimSuffix(rcv.URL, "/reply")
			}
			h := newAdapter(t, withConfig(func(c *webhook.Config) { c.ReplyURL = host + tt.path }))
			_, err := h.a.Send(sendCtx(t, 300*time.Millisecond), reply(1, 1, "x"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send: %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), host+"/…") {
				t.Fatalf("error %q: want %s/… and no token", err, host)
			}
			for _, e := range h.logs.AllEntries() {
				if line, _ := e.String(); strings.Contains(line, token) {
					t.Fatalf("log line carries the token: %s", line)
				}
			}
		})
	}
	base := refused

	// A per-message reply_url no longer allowed is refused without
	// showing its path either.
	h := newAdapter(t, withConfig(func(c *webhook.Config) { c.ReplyURL = base + "/other" }))
	msg := reply(1, 1, "x")
	msg.Meta = map[string]string{webhook.MetaReplyURL: base + "/api/webhooks/1/" + token}
	if _, err := h.a.Send(sendCtx(t, time.Second), msg); !errors.Is(err, adapter.ErrPermanent) || strings.Contains(err.Error(), token) {
		t.Fatalf("Send to a reply_url not allowed: %v", err)
	}

	// Nor does a configuration error.
	c := webhook.NewConfig()
	c.Secret = secretFile(t, testSecret)
	c.ReplyURLAllow = []string{base + "/api/webhooks/1/" + token + "#frag"}
	env, _, _ := adapterEnv(t)
	if _, err := webhook.New(c, env); err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("New with a bad reply_url_allow: %v", err)
	}
}

// Without an IdempotencyKey (a caller other than the core) the key is
// derived from the message, so a retry still carries the same key.
func TestSendFallbackKey(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	a := sender(t, rcv.URL)
	msg := reply(1, 1, "x")
	msg.IdempotencyKey = ""
	for range 2 {
		if _, err := a.Send(sendCtx(t, 5*time.Second), msg); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rcv.Requests()
	if k := reqs[0].Header.Get("Idempotency-Key"); k == "" || k != reqs[1].Header.Get("Idempotency-Key") {
		t.Fatalf("keys %q %q", k, reqs[1].Header.Get("Idempotency-Key"))
	}
	if len(rcv.Delivered()) != 1 || rcv.Duplicates() != 1 {
		t.Fatalf("delivered %d duplicates %d", len(rcv.Delivered()), rcv.Duplicates())
	}
}

func TestSendAfterStop(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	a := sender(t, rcv.URL)
	if err := a.Stop(sendCtx(t, time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Send(sendCtx(t, time.Second), reply(1, 1, "x"))
	if !errors.Is(err, adapter.ErrTemporary) || len(rcv.Requests()) != 0 {
		t.Fatalf("Send after Stop: %v, %d requests", err, len(rcv.Requests()))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"3600", time.Hour, true},
		{"3601", webhook.MaxRetryAfter, true},
		{"18446744073709551616", webhook.MaxRetryAfter, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sunday, 01-Mar-26 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Sun Mar  1 12:00:10 2026", 10 * time.Second, true},  // asctime
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0, true},            // past
		{"Mon, 02 Mar 2026 12:00:00 GMT", webhook.MaxRetryAfter, true},
	}
	for _, tt := range tests {
		got, ok := webhook.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) got %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func ptr[T any](v T) *T { return &v }
