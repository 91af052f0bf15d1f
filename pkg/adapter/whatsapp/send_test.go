// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

func reply(text string) *message.Outbound {
	return &message.Outbound{Platform: TypeName, ChatID: ann, ReplyTo: "wamid.in", Text: text}
}

func TestSendReply(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	res, err := h.a.Send(t.Context(), reply("hello @4915550002 and @all"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := h.fake.Sent()
	if len(sent) != 1 || res.MessageID != sent[0].ID {
		t.Fatalf("sent %+v, result %+v", sent, res)
	}
	s := sent[0]
	if s.Type != "text" || s.To != ann || s.ReplyTo != "wamid.in" || s.Auth != "Bearer "+whatsapptest.DefaultToken {
		t.Errorf("sent %+v", s)
	}
	if strings.Contains(s.Text, "@4915550002") || strings.ReplaceAll(s.Text, "\u2060", "") != "hello @4915550002 and @all" {
		t.Errorf("mention not neutralised, or text changed: %q", s.Text)
	}
}

func TestNeutraliseKeepsLength(t *testing.T) {
	s := strings.Repeat("@1", MaxTextLen/2)
	got := neutralise(s, MaxTextLen)
	if n := len([]rune(got)); n != MaxTextLen || strings.Contains(got, "@") {
		t.Fatalf("neutralised a full-length text to %d characters (with @: %v)", n, strings.Contains(got, "@"))
	}
}

func TestWindow(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil).start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	// Inside the window a push is a text message.
	if _, err := h.a.Send(t.Context(), &message.Outbound{ChatID: ann, Text: "news"}); err != nil {
		t.Fatalf("push inside the window: %v", err)
	}
	// 25 hours later both the adapter and WhatsApp see the window closed.
	later := time.Now().Add(25 * time.Hour)
	h.a.now = func() time.Time { return later }
	h.fake.SetNow(func() time.Time { return later })
	_, err := h.a.Send(t.Context(), reply("too late"))
	if !errors.Is(err, ErrOutsideWindow) || !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "last wrote at") {
		t.Fatalf("reply outside the window: %v, want ErrOutsideWindow (permanent)", err)
	}
	_, err = h.a.Send(t.Context(), &message.Outbound{ChatID: ann, Text: "news"})
	if !errors.Is(err, ErrOutsideWindow) || !strings.Contains(err.Error(), "template_name") {
		t.Fatalf("push outside the window without a template: %v", err)
	}
	if n := len(h.fake.Sent()); n != 1 {
		t.Fatalf("%d messages reached WhatsApp, want only the first", n)
	}

	// The record survives a restart (state dir), and a template is used
	// for the push once configured.
	h2 := newHarnessFake(t, h.fake, dir, func(c *Config) {
		c.TemplateName, c.TemplateLanguage, c.TemplateTextParam = "herald_update", "de", true
	}).start()
	h2.a.now = func() time.Time { return later }
	if _, err := h2.a.Send(t.Context(), &message.Outbound{ChatID: ann, Text: "news"}); err != nil {
		t.Fatalf("template push: %v", err)
	}
	s := h.fake.Sent()[1]
	if s.Type != "template" || s.Template != "herald_update" || s.Language != "de" || len(s.Params) != 1 || s.Params[0] != "news" {
		t.Fatalf("template sent as %+v", s)
	}
	if _, err := h2.a.Send(t.Context(), reply("still too late")); !errors.Is(err, ErrOutsideWindow) {
		t.Fatalf("a reply outside the window must not become a template: %v", err)
	}
}

func TestWindowUnknownUserWhatsAppDecides(t *testing.T) {
	h := newHarness(t, "", nil).start()
	// No record of this user (it predates the state dir): the reply is
	// tried, and WhatsApp answers 131047.
	_, err := h.a.Send(t.Context(), &message.Outbound{ChatID: "4915559999", ReplyTo: "wamid.x", Text: "hi"})
	if !errors.Is(err, ErrOutsideWindow) || !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "131047") {
		t.Fatalf("Send = %v, want 131047 as ErrOutsideWindow", err)
	}
}

func TestSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    whatsapptest.Failure
		want    error
		after   time.Duration
		clamped bool
	}{
		{"429 with Retry-After", whatsapptest.RateLimited("2"), adapter.ErrRateLimited, 2 * time.Second, false},
		{"429 without Retry-After", whatsapptest.RateLimited(""), adapter.ErrRateLimited, defaultRateWait, false},
		{"Retry-After clamped", whatsapptest.RateLimited("9999999"), adapter.ErrRateLimited, adapter.MaxRetryAfter, true},
		{"pair rate limit", whatsapptest.GraphError(400, 131056, "(#131056) pair rate limit hit"), adapter.ErrRateLimited, defaultRateWait, false},
		{"account rate limit", whatsapptest.GraphError(400, 80007, "(#80007) rate limit"), adapter.ErrRateLimited, defaultRateWait, false},
		{"app call limit", whatsapptest.GraphError(400, 4, "(#4) Application request limit reached"), adapter.ErrRateLimited, defaultRateWait, false},
		{"server error", whatsapptest.GraphError(500, 2, "Service temporarily unavailable"), adapter.ErrTemporary, 0, false},
		{"something went wrong", whatsapptest.GraphError(400, 131000, "Something went wrong"), adapter.ErrTemporary, 0, false},
		{"invalid parameter", whatsapptest.GraphError(400, 100, "(#100) Invalid parameter"), adapter.ErrPermanent, 0, false},
		{"permission", whatsapptest.GraphError(403, 200, "(#200) Permissions error"), adapter.ErrUnauthorized, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "", nil).start()
			hook := adaptertest.Logs(h.env)
			// The token check at start must not take the scripted answer.
			h.st.WaitPhase(t, adapter.PhaseConnected, wait)
			h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
			h.fake.Script(tc.fail)
			_, err := h.a.Send(t.Context(), reply("x"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
			if d, ok := adapter.RetryAfter(err); tc.after != 0 && (!ok || d != tc.after) {
				t.Errorf("retry after %v %v, want %v", d, ok, tc.after)
			}
			if got := len(adaptertest.Clamps(hook)) > 0; got != tc.clamped {
				t.Errorf("clamp logged: %v, want %v", got, tc.clamped)
			}
			if !adapter.Retryable(err) && tc.want != adapter.ErrPermanent && tc.want != adapter.ErrUnauthorized {
				t.Errorf("%v is not retryable", err)
			}
		})
	}
}

func TestExpiredTokenFailsPlatform(t *testing.T) {
	h := newHarness(t, "", nil)
	hook := adaptertest.Logs(h.env)
	h.start()
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	h.fake.ExpireToken()
	_, err := h.a.Send(t.Context(), reply("x"))
	if !errors.Is(err, adapter.ErrUnauthorized) || !strings.Contains(err.Error(), "190") {
		t.Fatalf("Send = %v, want ErrUnauthorized with code 190", err)
	}
	if st := h.st.WaitPhase(t, adapter.PhaseFatal, wait); !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Errorf("fatal report %+v", st)
	}
	adaptertest.RequireEvent(t, hook, logging.MsgAdapterFatal)
	if strings.Contains(err.Error(), whatsapptest.DefaultToken) {
		t.Errorf("the token leaked into the error: %v", err)
	}
}

func TestRejectedTokenAtStart(t *testing.T) {
	fake := whatsapptest.New(t)
	fake.ExpireToken()
	h := newHarnessFake(t, fake, "", nil)
	hook := adaptertest.Logs(h.env)
	h.start()
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Fatalf("fatal report %+v", st)
	}
	adaptertest.RequireEvent(t, hook, logging.MsgAdapterFatal)
	// Webhooks are still stored: nothing is lost while the token is fixed.
	h.deliver(fake.Text(whatsapptest.Message{ID: "wamid.kept", From: ann, Text: "hi"}))
	if len(h.inbox.Messages()) != 1 {
		t.Fatal("message not stored while the token is rejected")
	}
}

func TestTokenCheckRetriesRateLimit(t *testing.T) {
	fake := whatsapptest.New(t)
	fake.Script(whatsapptest.GraphError(http.StatusInternalServerError, 2, "Service temporarily unavailable"))
	h := newHarnessFake(t, fake, "", nil)
	h.a.creds.Backoff.Min = 10 * time.Millisecond
	h.start()
	h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	if fake.Checks() != 1 || h.metrics.ReconnectCount() != 1 {
		t.Errorf("checks %d, reconnects %d; want 1 and 1", fake.Checks(), h.metrics.ReconnectCount())
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	h := newHarness(t, "", nil).start()
	for _, m := range []*message.Outbound{
		{ChatID: "+49 155", ReplyTo: "w", Text: "x"},
		{ChatID: ann, ReplyTo: "w", Text: "  "},
		{ChatID: ann, ReplyTo: "w", Text: strings.Repeat("x", MaxTextLen+1)},
	} {
		if _, err := h.a.Send(t.Context(), m); !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("Send(%q, %d chars) = %v, want ErrPermanent", m.ChatID, len(m.Text), err)
		}
	}
}

func TestPushToUnknownUser(t *testing.T) {
	h := newHarness(t, "", nil).start()
	// Without a template the text is tried, and WhatsApp refuses it.
	_, err := h.a.Send(t.Context(), &message.Outbound{ChatID: "4915559999", Text: "news"})
	if !errors.Is(err, ErrOutsideWindow) || !strings.Contains(err.Error(), "131047") {
		t.Fatalf("push without a template: %v, want WhatsApp's 131047", err)
	}
	// With one, the push is the template.
	h2 := newHarnessFake(t, h.fake, "", func(c *Config) { c.TemplateName = "hello_world" }).start()
	if _, err := h2.a.Send(t.Context(), &message.Outbound{ChatID: "4915559999", Text: "news"}); err != nil {
		t.Fatalf("template push: %v", err)
	}
	if s := h.fake.Sent(); len(s) != 1 || s[0].Template != "hello_world" || len(s[0].Params) != 0 {
		t.Fatalf("sent %+v, want the template without parameters", s)
	}
}

func TestSendBlackholedIsBoundedAndAmbiguous(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.RequestTimeout = 200 * time.Millisecond }).start()
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	h.fake.Script(whatsapptest.Blackhole())
	done := make(chan error, 1)
	go func() {
		_, err := h.a.Send(t.Context(), reply("into the void"))
		done <- err
	}()
	select {
	case err := <-done:
		// The request was written: WhatsApp may have sent it, and a blind
		// retry could show it twice.
		if !errors.Is(err, adapter.ErrAmbiguous) {
			t.Fatalf("Send = %v, want ErrAmbiguous", err)
		}
	case <-time.After(wait):
		t.Fatal("Send did not end after request_timeout")
	}
	if h.fake.Blackholed() != 1 {
		t.Fatalf("blackholed %d requests, want 1", h.fake.Blackholed())
	}
}
