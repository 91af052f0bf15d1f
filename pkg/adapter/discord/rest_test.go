// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/message"
)

func reply(text string, part int) *message.Outbound {
	in := &message.Inbound{Platform: "discord", EventID: "700", ChatID: "200000000000000001", ChatType: message.ChatGroup, SenderID: "31", MessageID: "700"}
	out := in.ReplyTo()
	out.Text = text
	out.Part = part
	out.IdempotencyKey = message.IdempotencyKey(in.Platform, in.EventID, part)
	return &out
}

func TestSendReply(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	res, err := h.a.Send(t.Context(), reply("hi @everyone <@123>", 1))
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if res.MessageID != m.ID || m.ChannelID != "200000000000000001" || m.Content != "hi @everyone <@123>" || m.ReplyTo != "700" {
		t.Errorf("message %+v, result %+v", m, res)
	}
	if want := nonce(message.IdempotencyKey("discord", "700", 1)); m.Nonce != want || !m.EnforceNonce || len(m.Nonce) != 25 {
		t.Errorf("nonce %q enforce %v, want %q enforced", m.Nonce, m.EnforceNonce, want)
	}
	requireNoPings(t, m)
	// Unsolicited message: no reference.
	out := reply("note", 1)
	out.ReplyTo, out.IdempotencyKey = "", ""
	if _, err := h.a.Send(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages()[1]; m.ReplyTo != "" || m.Nonce != "" || m.EnforceNonce {
		t.Errorf("unsolicited message %+v", m)
	}
	req := srv.Requests()[0]
	if req.Auth != "Bot "+srv.Token || req.Path != "/api/v10/channels/200000000000000001/messages" {
		t.Errorf("request %+v", req)
	}
}

// requireNoPings checks that m was sent with allowed_mentions {"parse":[]}:
// Discord then notifies nobody, whatever @everyone, @here, <@id> or <@&role>
// the agent's text holds.
func requireNoPings(t *testing.T, m discordtest.Message) {
	t.Helper()
	var am struct {
		Parse []string `json:"parse"`
	}
	if err := json.Unmarshal(m.AllowedMentions, &am); err != nil || am.Parse == nil || len(am.Parse) != 0 {
		t.Errorf("message %q sent with allowed_mentions %s, want {\"parse\":[]}", m.Content, m.AllowedMentions)
	}
}

func TestSendChunks(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	if h.a.MaxMessageLen() != 2000 {
		t.Fatalf("MaxMessageLen %d", h.a.MaxMessageLen())
	}
	text := strings.Repeat("é", 4500) // 2 bytes per character: limits are in characters
	res, err := h.a.Send(t.Context(), reply(text, 1))
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	var joined strings.Builder
	nonces := map[string]bool{}
	for i, m := range msgs {
		if n := utf8.RuneCountInString(m.Content); n > 2000 {
			t.Errorf("part %d has %d characters", i, n)
		}
		if (i == 0) != (m.ReplyTo != "") {
			t.Errorf("part %d reply_to %q: only the first part replies", i, m.ReplyTo)
		}
		nonces[m.Nonce] = true
		joined.WriteString(m.Content)
	}
	if joined.String() != text {
		t.Error("parts do not add up to the text")
	}
	if len(nonces) != 3 {
		t.Errorf("nonces %v, want 3 distinct", nonces)
	}
	if res.MessageID != msgs[2].ID {
		t.Errorf("result id %s, want the last part's %s", res.MessageID, msgs[2].ID)
	}
	// Sending the same reply again (a retry) shows nothing new.
	if _, err := h.a.Send(t.Context(), reply(text, 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("retry of a split reply created %d messages", n-3)
	}
}

func TestSendConfiguredLimit(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv, func(c *Config) { c.MaxMessageLen = 10 })
	if _, err := h.a.Send(t.Context(), reply("line one\nline two\nthree", 1)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.Content)
	}
	if want := "line one\n|line two\n|three"; strings.Join(got, "|") != want {
		t.Errorf("parts %q, want cut after newlines: %q", got, want)
	}
}

func TestNonceDedupe(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	for range 3 {
		if _, err := h.a.Send(t.Context(), reply("same part", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("3 sends of one part created %d messages, want 1", n)
	}
	// Parts of one reply share the key prefix well beyond 25 characters:
	// they must still get different nonces.
	if _, err := h.a.Send(t.Context(), reply("second part", 2)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("part 2 was swallowed as a duplicate of part 1 (%d messages)", n)
	}
}

// TestAmbiguousThenRetry: Discord created the message but the answer was
// lost. The error is ErrAmbiguous; the retry with the same key is deduped.
func TestAmbiguousThenRetry(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	srv.Inject(discordtest.Messages, fakeserver.Blackhole().Times(1))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := h.a.Send(ctx, reply("hello", 1))
	if !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("lost answer: %v, want ErrAmbiguous", err)
	}
	if _, err := h.a.Send(t.Context(), reply("hello", 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("user sees %d messages, want 1", n)
	}
}

func TestSendErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		is     error
		text   string
	}{
		{http.StatusBadRequest, adapter.ErrPermanent, "Invalid Form Body"},
		{http.StatusForbidden, adapter.ErrPermanent, "Missing Permissions"},
		{http.StatusNotFound, adapter.ErrPermanent, "Unknown Channel"},
		{http.StatusInternalServerError, adapter.ErrTemporary, "500"},
		{http.StatusBadGateway, adapter.ErrTemporary, "502"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			h := newHarness(t, srv)
			srv.Inject(discordtest.Messages, fakeserver.Reject(tc.status).Times(1))
			_, err := h.a.Send(t.Context(), reply("x", 1))
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "discord: create message: ") {
				t.Fatalf("status %d: %v, want %v mentioning %q", tc.status, err, tc.is, tc.text)
			}
			if adapter.Retryable(err) != (tc.is == adapter.ErrTemporary) {
				t.Errorf("Retryable(%v) = %v", err, adapter.Retryable(err))
			}
		})
	}
}

func TestSendNetworkError(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	srv.Close()
	_, err := h.a.Send(t.Context(), reply("x", 1))
	if !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("refused connection: %v, want ErrTemporary", err)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	for _, out := range []*message.Outbound{{Text: "no chat"}, {ChatID: "1", Text: "  \n"}} {
		if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("Send(%+v) = %v, want ErrPermanent", out, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests for invalid messages", n)
	}
}

func TestRateLimited429(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	srv.Inject(discordtest.Messages, fakeserver.RateLimit(1, 1500*time.Millisecond))
	_, err := h.a.Send(t.Context(), reply("x", 1))
	var ra *adapter.RetryAfterError
	if !errors.As(err, &ra) || !errors.Is(err, adapter.ErrRateLimited) || ra.After != 1500*time.Millisecond {
		t.Fatalf("429: %v, want RetryAfterError{1.5s, ErrRateLimited}", err)
	}
	if !strings.Contains(err.Error(), "being rate limited") {
		t.Errorf("error lacks Discord's message: %v", err)
	}
	// The bucket is closed for 1.5 s now: a send that cannot wait that
	// long fails at once, without a request.
	before := len(srv.Requests())
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := h.a.Send(ctx, reply("y", 2)); !errors.As(err, &ra) || !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("send into a closed bucket: %v", err)
	}
	if n := len(srv.Requests()); n != before {
		t.Errorf("%d requests sent into a closed bucket", n-before)
	}
}

// TestHostileRetryAfter: a retry_after of 30 days is clamped to
// adapter.MaxRetryAfter, and the clamp is logged with both values.
func TestHostileRetryAfter(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	srv.Inject(discordtest.Messages, fakeserver.RateLimit(1, 30*24*time.Hour))
	_, err := h.a.Send(t.Context(), reply("x", 1))
	if ra, ok := adapter.RetryAfter(err); !ok || ra != adapter.MaxRetryAfter || !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("429 asking for 30 days: %v, want a retry after %v", err, adapter.MaxRetryAfter)
	}
	requireClamp(t, h, float64(30*24*3600), adapter.MaxRetryAfter)
}

// requireClamp checks that the clamp of a platform value was logged, with
// the value given and the value used. A 429 carries the delay twice
// (retry_after and X-RateLimit-Reset-After): each value out of bounds is
// logged.
func requireClamp(t *testing.T, h *harness, given any, used time.Duration) {
	t.Helper()
	clamps := adaptertest.Clamps(h.logs)
	for _, c := range clamps {
		if c["given"] != given || c["used"] != used.String() {
			t.Errorf("clamp log entry %v, want given %v and used %v", c, given, used)
		}
	}
	if len(clamps) == 0 {
		t.Errorf("no clamp logged, want given %v and used %v", given, used)
	}
}

func TestRateLimitedGlobal(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	srv.Inject(discordtest.Messages, fakeserver.RateLimit(1, 100*time.Millisecond).WithCode(discordtest.Global))
	if _, err := h.a.Send(t.Context(), reply("x", 1)); !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("global 429: %v", err)
	}
	if !h.a.rest.lim.global.After(time.Now()) {
		t.Fatal("global limit not recorded")
	}
	// Another route and channel waits for the global limit too.
	out := reply("typing", 1)
	out.ChatID = "999"
	if err := h.a.Typing(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if srv.Typing() != 1 {
		t.Fatal("typing not sent after the global limit")
	}
}

// TestRateLimitBucket: a bucket at 0 waits Reset-After before sending.
func TestRateLimitBucket(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	srv.SetBucket(2, 150*time.Millisecond)
	for i := range 5 {
		if _, err := h.a.Send(t.Context(), reply(fmt.Sprint("m", i), i+1)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := len(srv.Messages()); n != 5 {
		t.Fatalf("%d messages", n)
	}
	if v := srv.Violations(); v != 0 {
		t.Fatalf("%d requests hit an exhausted bucket: the adapter did not wait", v)
	}
	// Another channel has its own bucket (major parameter).
	out := reply("elsewhere", 9)
	out.ChatID = "555"
	if _, err := h.a.Send(t.Context(), out); err != nil {
		t.Fatal(err)
	}
}

func TestEditAndTyping(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	res, err := h.a.Send(t.Context(), reply("draft", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.a.Edit(t.Context(), reply("final text @everyone <@&42>", 1), res.MessageID); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.Content != "final text @everyone <@&42>" || m.Edits != 1 {
		t.Errorf("after edit: %+v", m)
	}
	requireNoPings(t, m)
	if err := h.a.Edit(t.Context(), reply("x", 1), "404404"); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("edit of unknown message: %v", err)
	}
	if err := h.a.Edit(t.Context(), reply(strings.Repeat("x", 2001), 1), res.MessageID); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("edit over the limit: %v", err)
	}
	if err := h.a.Typing(t.Context(), reply("", 1)); err != nil {
		t.Fatal(err)
	}
	if srv.Typing() != 1 {
		t.Error("typing not recorded")
	}
	srv.Inject(discordtest.Messages, fakeserver.Reject(500).Times(1))
	if err := h.a.Typing(t.Context(), reply("", 1)); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("typing 500: %v", err)
	}
}

func TestNonce(t *testing.T) {
	k1 := message.IdempotencyKey("discord", "1", 1)
	k2 := message.IdempotencyKey("discord", "1", 2)
	if k1[:maxNonce] != k2[:maxNonce] {
		t.Fatal("test premise: herald's keys of one reply share 25 characters")
	}
	for _, tc := range []struct{ a, b string }{{k1, k2}, {k1, chunkNonce(k1, 1)}, {chunkNonce(k1, 1), chunkNonce(k1, 2)}} {
		if nonce(tc.a) == nonce(tc.b) && tc.a != tc.b {
			t.Errorf("nonce(%q) == nonce(%q)", tc.a, tc.b)
		}
	}
	if n := nonce(k1); len(n) != maxNonce || n != nonce(k1) {
		t.Errorf("nonce(%q) = %q: want a stable 25-character value", k1, n)
	}
	if n := nonce("short-key"); n != "short-key" {
		t.Errorf("short keys are used as they are, got %q", n)
	}
	if nonce("") != "" || chunkNonce("", 3) != "" {
		t.Error("no key, no nonce")
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want []string
	}{
		{"", 5, []string{""}},
		{"abc", 5, []string{"abc"}},
		{"abcdef", 3, []string{"abc", "def"}},
		{"a\nbcdefgh", 4, []string{"a\nbc", "defg", "h"}}, // newline in the first half: not used
		{"abc\ndefgh", 5, []string{"abc\n", "defgh"}},
		{"ééé", 2, []string{"éé", "é"}},
	} {
		got := split(tc.in, tc.n)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("split(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBuckets()
	b.now = func() time.Time { return now }
	if w := b.reserve("r", "c1"); w != 0 {
		t.Fatalf("unknown bucket waits %v", w)
	}
	h := http.Header{}
	h.Set("X-RateLimit-Bucket", "abc")
	h.Set("X-RateLimit-Remaining", "1")
	h.Set("X-RateLimit-Reset-After", "2.5")
	b.update("r", "c1", h)
	if w := b.reserve("r", "c1"); w != 0 {
		t.Fatalf("one left, waits %v", w)
	}
	if w := b.reserve("r", "c1"); w != 2500*time.Millisecond {
		t.Fatalf("exhausted bucket waits %v, want 2.5s", w)
	}
	if w := b.reserve("r", "c2"); w != 0 {
		t.Fatalf("other channel waits %v", w)
	}
	now = now.Add(2500 * time.Millisecond)
	if w := b.reserve("r", "c1"); w != 0 {
		t.Fatalf("after reset waits %v", w)
	}
	b.limited("r", "c2", time.Second, false)
	if w := b.reserve("r", "c2"); w != time.Second {
		t.Fatalf("after 429 waits %v", w)
	}
	b.limited("x", "", 3*time.Second, true)
	if w := b.reserve("other", "c9"); w != 3*time.Second {
		t.Fatalf("global limit: waits %v", w)
	}
	// A hostile reset is clamped.
	now = now.Add(time.Hour)
	for _, v := range []string{"2592000", "1e30", "+Inf"} {
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset-After", v)
		b.update("r", "c3", h)
		if w := b.reserve("r", "c3"); w != adapter.MaxRetryAfter {
			t.Errorf("X-RateLimit-Reset-After %s: waits %v, want %v", v, w, adapter.MaxRetryAfter)
		}
	}
}

func TestCmdLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newCmdLimiter(120, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 120 {
		if w := l.reserve(); w != 0 {
			t.Fatalf("command %d waits %v", i, w)
		}
		now = now.Add(100 * time.Millisecond)
	}
	// 120 commands in 12 s: the 121st waits until the first leaves the
	// 60 s window.
	if w := l.reserve(); w != 48*time.Second {
		t.Fatalf("121st command waits %v, want 48s", w)
	}
	now = now.Add(48 * time.Second)
	if w := l.reserve(); w != 0 {
		t.Fatalf("after the window: waits %v", w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	full := newCmdLimiter(1, time.Hour)
	_ = full.reserve()
	if err := full.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on a full limiter with a cancelled context: %v", err)
	}
}
