// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/message"
)

const (
	replyPattern  = "POST /open-apis/im/v1/messages/{id}/reply"
	createPattern = "POST /open-apis/im/v1/messages"
)

func outbound(text, replyTo, key string) *message.Outbound {
	return &message.Outbound{Platform: "feishu", ChatID: "oc_1", ReplyTo: replyTo, Text: text, IdempotencyKey: key, Part: 1, Parts: 1}
}

func TestSendReplyAndCreate(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx := context.Background()
	key := message.IdempotencyKey("feishu", "ev_1", 1)
	res, err := h.a.Send(ctx, outbound("the answer", "om_question", key))
	if err != nil {
		t.Fatal(err)
	}
	res2, err := h.a.Send(ctx, outbound("unsolicited \"quoted\"\nline", "", "k2"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("platform shows %d messages", len(msgs))
	}
	if m := msgs[0]; m.ReplyTo != "om_question" || m.UUID != key || m.Text != "the answer" || m.MessageID != res.MessageID || m.ReplyInThread {
		t.Errorf("reply shown as %+v (result %+v)", m, res)
	}
	if m := msgs[1]; m.ChatID != "oc_1" || m.ReplyTo != "" || m.Text != "unsolicited \"quoted\"\nline" || m.MessageID != res2.MessageID {
		t.Errorf("message shown as %+v", m)
	}
	if n := h.fake.TokensIssued(); n != 1 {
		t.Errorf("%d tokens fetched, want 1 (cached)", n)
	}
}

// TestSendIdempotentAfterAmbiguousTimeout: the platform stores the reply but
// the answer never arrives. The outcome is ambiguous; the retry with the
// same uuid shows no second message.
func TestSendIdempotentAfterAmbiguousTimeout(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	if _, err := h.a.rest.tenantToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.fake.Inject(feishutest.Messages, fakeserver.Blackhole().Times(1))
	msg := outbound("answer", "om_q", message.IdempotencyKey("feishu", "ev_9", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := h.a.Send(ctx, msg)
	cancel()
	if !errors.Is(err, adapter.ErrAmbiguous) || !adapter.Retryable(err) {
		t.Fatalf("Send = %v, want a retryable ErrAmbiguous", err)
	}
	res, err := h.a.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 1 || msgs[0].MessageID != res.MessageID {
		t.Fatalf("platform shows %+v, want one message %s", msgs, res.MessageID)
	}
	if n := h.fake.Requests(replyPattern); n != 2 {
		t.Errorf("%d reply requests, want 2", n)
	}
}

func TestSendNetworkErrorBeforeSendingIsTemporary(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, func(c *Config) { c.BaseURL = "http://127.0.0.1:1" })
	_, err := h.a.Send(context.Background(), outbound("x", "om_q", "k"))
	if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("Send = %v, want ErrTemporary", err)
	}
}

func TestSendErrorClasses(t *testing.T) {
	tests := []struct {
		name      string
		f         feishutest.Failure
		want      error
		wantAfter time.Duration
	}{
		{"429 with reset", feishutest.Failure{Status: 429, Code: 99991400, Msg: "request trigger frequency limit", RateLimitReset: "7"}, adapter.ErrRateLimited, 7 * time.Second},
		{"code 99991400 on 400", feishutest.Failure{Status: 400, Code: 99991400, RateLimitReset: "2"}, adapter.ErrRateLimited, 2 * time.Second},
		{"429 with a reset of 30 days", feishutest.Failure{Status: 429, Code: 99991400, RateLimitReset: "2592000"}, adapter.ErrRateLimited, adapter.MaxRetryAfter},
		{"429 with a reset of 1e30 s", feishutest.Failure{Status: 429, Code: 99991400, RateLimitReset: "1e30"}, adapter.ErrRateLimited, adapter.MaxRetryAfter},
		{"429 with a reset of NaN", feishutest.Failure{Status: 429, Code: 99991400, RateLimitReset: "NaN"}, adapter.ErrRateLimited, time.Second},
		{"230020 without reset", feishutest.Failure{Status: 400, Code: 230020, Msg: "frequency limit"}, adapter.ErrRateLimited, time.Second},
		{"230001 bad param", feishutest.Failure{Code: 230001}, adapter.ErrPermanent, 0},
		{"230002 bot not in chat", feishutest.Failure{Code: 230002}, adapter.ErrPermanent, 0},
		{"230006 bot disabled", feishutest.Failure{Code: 230006}, adapter.ErrPermanent, 0},
		{"other 4xx", feishutest.Failure{Status: 403, Code: 99991672, Msg: "no permission"}, adapter.ErrPermanent, 0},
		{"5xx", feishutest.Failure{Status: 502, Code: 1}, adapter.ErrTemporary, 0},
	}
	h := newHarness(t, feishutest.Options{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.fake.FailNext(tt.f)
			_, err := h.a.Send(context.Background(), outbound("x", "om_q", "k-"+tt.name))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			after, ok := adapter.RetryAfter(err)
			if tt.wantAfter != 0 && (!ok || after != tt.wantAfter) {
				t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tt.wantAfter)
			}
			if tt.wantAfter == 0 && ok {
				t.Errorf("unexpected RetryAfter %v", after)
			}
			if got, want := adapter.Retryable(err), !errors.Is(tt.want, adapter.ErrPermanent); got != want {
				t.Errorf("Retryable = %v, want %v", got, want)
			}
		})
	}
	if n := len(h.fake.Messages()); n != 0 {
		t.Errorf("platform shows %d messages", n)
	}
}

func TestTokenRefreshOnInvalidToken(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx := context.Background()
	if _, err := h.a.Send(ctx, outbound("one", "", "k1")); err != nil {
		t.Fatal(err)
	}
	h.fake.InvalidateTokens() // the next call gets 99991663
	if _, err := h.a.Send(ctx, outbound("two", "", "k2")); err != nil {
		t.Fatalf("Send after the token was invalidated: %v", err)
	}
	if n := h.fake.TokensIssued(); n != 2 {
		t.Errorf("%d tokens fetched, want 2", n)
	}
	if n := h.fake.Requests(createPattern); n != 3 {
		t.Errorf("%d create requests, want 3 (one retried once)", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	h := newHarness(t, feishutest.Options{TokenExpire: 7200}, nil)
	var mu sync.Mutex
	now := time.Now()
	h.a.rest.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()
	send := func(key string) {
		t.Helper()
		if _, err := h.a.Send(ctx, outbound("x", "", key)); err != nil {
			t.Fatal(err)
		}
	}
	send("a")
	advance(7200*time.Second - 3*time.Minute - time.Second)
	send("b")
	if n := h.fake.TokensIssued(); n != 1 {
		t.Fatalf("token refreshed too early (%d fetched)", n)
	}
	advance(2 * time.Second)
	send("c")
	if n := h.fake.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens fetched, want a refresh 3 min before expiry", n)
	}
}

func TestRefreshAfter(t *testing.T) {
	for expire, want := range map[time.Duration]time.Duration{
		2 * time.Hour:    2*time.Hour - 3*time.Minute,
		10 * time.Minute: 7 * time.Minute,
		4 * time.Minute:  2 * time.Minute,
		2 * time.Second:  time.Second,
	} {
		if got := refreshAfter(expire); got != want {
			t.Errorf("refreshAfter(%v) = %v, want %v", expire, got, want)
		}
	}
}

func TestCredentialsRejectedOnSend(t *testing.T) {
	h := newHarness(t, feishutest.Options{AppSecret: "another-secret"}, nil)
	_, err := h.a.Send(context.Background(), outbound("x", "om_q", "k"))
	if !errors.Is(err, adapter.ErrUnauthorized) || adapter.Retryable(err) {
		t.Fatalf("Send = %v, want a non-retryable ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "test-secret") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func TestEdit(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx := context.Background()
	res, err := h.a.Send(ctx, outbound("draft", "om_q", "k"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.a.Edit(ctx, outbound("final", "om_q", "k"), res.MessageID); err != nil {
		t.Fatal(err)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 1 || msgs[0].Text != "final" || msgs[0].Edits != 1 {
		t.Errorf("platform shows %+v", msgs)
	}
	if err := h.a.Edit(ctx, outbound("x", "", ""), "om_unknown"); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("Edit of an unknown message = %v, want ErrPermanent", err)
	}
	// An edit whose answer is lost is temporary, not ambiguous: repeating
	// it is harmless.
	h.fake.Inject(feishutest.Messages, fakeserver.Blackhole().Times(1))
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = h.a.Edit(tctx, outbound("final 2", "om_q", "k"), res.MessageID)
	if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Errorf("Edit with a lost answer = %v, want ErrTemporary only", err)
	}
	if msgs := h.fake.Messages(); msgs[0].Text != "final 2" || msgs[0].Edits != 2 {
		t.Errorf("platform shows %+v", msgs[0])
	}
}

func TestSendRejectsBeforeRequest(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx := context.Background()
	for name, msg := range map[string]*message.Outbound{
		"empty":     outbound("", "om_q", "k"),
		"no target": {Text: "x"},
		"too long":  outbound(strings.Repeat("\\", 80<<10), "om_q", "k"),
	} {
		if _, err := h.a.Send(ctx, msg); !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("%s: Send = %v, want ErrPermanent", name, err)
		}
	}
	if n := h.fake.Requests(replyPattern) + h.fake.Requests(createPattern); n != 0 {
		t.Errorf("%d message requests sent", n)
	}
}

func TestRequestUUID(t *testing.T) {
	short := message.IdempotencyKey("feishu", "ev", 3)
	if got := requestUUID(short); got != short {
		t.Errorf("requestUUID(%q) = %q, want it unchanged", short, got)
	}
	long := strings.Repeat("k", 80)
	got := requestUUID(long)
	if len(got) > maxUUIDLen || got != requestUUID(long) || got == requestUUID(long+"x") {
		t.Errorf("requestUUID(80 chars) = %q: want a stable hash of at most %d chars", got, maxUUIDLen)
	}
}

func TestMaxMessageLen(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, func(c *Config) { c.MaxMessageLen = 500 })
	if got := h.a.MaxMessageLen(); got != 500 {
		t.Errorf("MaxMessageLen = %d, want the configured 500", got)
	}
}

// TestSendNeutralisesMentions: the agent's text cannot mention anyone. A
// text message renders <at user_id="all"></at> as @all; herald breaks every
// at tag in Send and Edit, and leaves other text as written.
func TestSendNeutralisesMentions(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx := context.Background()
	hostile := []string{
		`<at user_id="all"></at> meeting now`,
		`<AT USER_ID="all">everyone</AT>`,
		`hi <at id=all></at>`,
		"<at\nuser_id=\"ou_victim\">Ann</at>",
		`<at open_id="ou_1"></at><at email=boss@example.com></at>`,
		`<at user_id="all">`,
		"< at\u00a0user_id=\"all\"></at>",
	}
	for i, text := range hostile {
		res, err := h.a.Send(ctx, outbound(text, "", fmt.Sprint("k", i)))
		if err != nil {
			t.Fatalf("Send(%q): %v", text, err)
		}
		if err := h.a.Edit(ctx, outbound("again: "+text, "", ""), res.MessageID); err != nil {
			t.Fatalf("Edit(%q): %v", text, err)
		}
	}
	for _, m := range h.fake.Messages() {
		if len(m.Mentions) != 0 {
			t.Errorf("the platform shows %q with mentions %q", m.Text, m.Mentions)
		}
		if !strings.Contains(m.Text, "\uFF1C") || strings.Contains(strings.ToLower(m.Text), "<at") {
			t.Errorf("the platform shows %q: the at tag is not broken", m.Text)
		}
	}
	plain := `a<b && c > d; x <atom/> <a href="x">; 1 <at`
	if _, err := h.a.Send(ctx, outbound(plain, "", "plain")); err != nil {
		t.Fatal(err)
	}
	msgs := h.fake.Messages()
	if got := msgs[len(msgs)-1].Text; got != "a<b && c > d; x <atom/> <a href=\"x\">; 1 \uFF1Cat" {
		t.Errorf("plain text shown as %q", got)
	}
}
