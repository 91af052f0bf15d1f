// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

func out(to, text string) *message.Outbound {
	return &message.Outbound{Platform: TypeName, ChatID: to, Text: text}
}

// TestSendCachesToken: replies go to the member as text from the agent,
// and one access token serves them all.
func TestSendCachesToken(t *testing.T) {
	h := newHarness(t, nil).start()
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	for _, text := range []string{"one", "two @all"} {
		if _, err := h.a.Send(context.Background(), out("zhangsan", text)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	sent := h.fake.To("zhangsan")
	if len(sent) != 2 || sent[0].Text != "one" || sent[1].Text != "two @all" || sent[0].AgentID != wecomtest.DefaultAgentID {
		t.Errorf("sent %+v", sent)
	}
	if n := h.fake.Issued(); n != 1 {
		t.Errorf("%d tokens fetched, want 1", n)
	}
}

// TestSendRenewsBeforeExpiry: a token within the refresh margin of its
// expires_in is replaced before use.
func TestSendRenewsBeforeExpiry(t *testing.T) {
	h := newHarness(t, nil)
	now := time.Now()
	h.a.api.now = func() time.Time { return now }
	if _, err := h.a.Send(context.Background(), out("zhangsan", "a")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(wecomtest.TokenLifetime*time.Second - refreshMargin + time.Second)
	if _, err := h.a.Send(context.Background(), out("zhangsan", "b")); err != nil {
		t.Fatal(err)
	}
	sent := h.fake.Sent()
	if h.fake.Issued() != 2 || len(sent) != 2 || sent[0].Token == sent[1].Token {
		t.Errorf("issued %d, sent %+v", h.fake.Issued(), sent)
	}
}

// TestSendExpiredToken: 42001 renews the token and repeats the send once;
// the member gets one message.
func TestSendExpiredToken(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.a.Send(context.Background(), out("zhangsan", "a")); err != nil {
		t.Fatal(err)
	}
	h.fake.ExpireTokens()
	if _, err := h.a.Send(context.Background(), out("zhangsan", "b")); err != nil {
		t.Fatalf("Send after expiry: %v", err)
	}
	if sent := h.fake.To("zhangsan"); len(sent) != 2 || sent[1].Text != "b" || h.fake.Issued() != 2 {
		t.Errorf("issued %d, sent %+v", h.fake.Issued(), sent)
	}
}

// TestSendFrequencyLimit: 45009 is rate-limited with a bounded wait.
func TestSendFrequencyLimit(t *testing.T) {
	h := newHarness(t, nil)
	h.fake.Inject(wecomtest.Send, fakeserver.RateLimit(1, 0))
	_, err := h.a.Send(context.Background(), out("zhangsan", "a"))
	d, ok := adapter.RetryAfter(err)
	if !ok || !errors.Is(err, adapter.ErrRateLimited) || d <= 0 || d > adapter.MaxRetryAfter {
		t.Fatalf("err %v, wait %v", err, d)
	}
	h.fake.Inject(wecomtest.Send, fakeserver.Reject(http.StatusOK).WithCode("-1").Times(1))
	if _, err := h.a.Send(context.Background(), out("zhangsan", "a")); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("busy: %v", err)
	}
	h.fake.Inject(wecomtest.Send, fakeserver.Reject(http.StatusOK).WithCode("81013").Times(1))
	if _, err := h.a.Send(context.Background(), out("zhangsan", "a")); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("no recipient: %v", err)
	}
}

// TestSendRejectedSecret: a reset secret makes the platform fatal with
// the adapter-fatal event, once, and the send fails as unauthorized.
func TestSendRejectedSecret(t *testing.T) {
	h := newHarness(t, nil).start()
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	hook := adaptertest.Logs(h.env)
	h.fake.ExpireTokens()
	h.fake.RejectSecret()
	_, err := h.a.Send(context.Background(), out("zhangsan", "a"))
	if !errors.Is(err, adapter.ErrUnauthorized) || strings.Contains(err.Error(), wecomtest.DefaultSecret) {
		t.Fatalf("err %v", err)
	}
	h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	adaptertest.RequireEvent(t, hook, logging.MsgAdapterFatal)
}

// TestStartRejectedSecret: a wrong secret at start is fatal, not retried.
func TestStartRejectedSecret(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Secret = adaptertest.SecretFile(t, "bad", "wrong-secret") }).start()
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Errorf("status err %v", st.Err)
	}
}

// TestSendBlackholed: an unanswered send is cut at request_timeout and
// reported ambiguous (WeCom may have delivered it).
func TestSendBlackholed(t *testing.T) {
	// Long enough for the request to be written on a loaded machine: only
	// a written request is ambiguous.
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 2 * time.Second })
	h.fake.Inject(wecomtest.Send, fakeserver.Blackhole().Times(1))
	_, err := h.a.Send(context.Background(), out("zhangsan", "a"))
	if !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("err %v", err)
	}
	if h.fake.Blackholed() != 1 {
		t.Errorf("blackholed %d", h.fake.Blackholed())
	}
}

// TestSendRefuses: @all, several recipients and over-long text never
// reach WeCom.
func TestSendRefuses(t *testing.T) {
	h := newHarness(t, nil)
	for _, m := range []*message.Outbound{
		out("@all", "hi"), out("@ALL", "hi"), out("zhangsan|lisi", "hi"), out("", "hi"),
		out("zhangsan", "  "), out("zhangsan", strings.Repeat("字", 683)), out(strings.Repeat("a", maxUserIDLen+1), "hi"),
	} {
		if _, err := h.a.Send(context.Background(), m); !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("%q: %v", m.ChatID, err)
		}
	}
	if n := len(h.fake.Sent()); n != 0 {
		t.Errorf("%d sent", n)
	}
}

// TestSendTokenUnanswered: an unanswered gettoken fails the send as
// temporary, not ambiguous (nothing was sent), within request_timeout;
// an HTTP 502 from WeCom's front is temporary too.
func TestSendTokenUnanswered(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	h.fake.Inject(wecomtest.Token, fakeserver.Blackhole().Times(1))
	_, err := h.a.Send(context.Background(), out("zhangsan", "a"))
	if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("err %v", err)
	}
	h.fake.Inject(wecomtest.Send, fakeserver.Reject(http.StatusBadGateway).Times(1))
	if _, err := h.a.Send(context.Background(), out("zhangsan", "a")); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("502: %v", err)
	}
	if _, err := h.a.Send(context.Background(), out("zhangsan", "a")); err != nil {
		t.Errorf("healed: %v", err)
	}
}
