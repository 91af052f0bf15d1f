// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// whatsappYAML is the platform section for the fake, with the access
// token given.
func whatsappYAML(e *e2e, fake *whatsapptest.Fake, token string) string {
	return fmt.Sprintf(`  whatsapp:
    allow_all: true
    phone_number_id: "%s"
    access_token: {file: %s}
    app_secret: {file: %s}
    verify_token: {file: %s}
    graph_url: %s
    request_timeout: 1s
`, fake.PhoneNumberID, e.secret("whatsapp-token", token), e.secret("whatsapp-app-secret", fake.AppSecret),
		e.secret("whatsapp-verify-token", whatsapptest.DefaultVerifyToken), fake.URL)
}

// TestE2EWhatsApp: a signed Cloud API webhook → herald → openai → a text
// message quoting the user's message; 200 only once stored; Meta's
// redeliveries (after a duplicate, a store that cannot write and a
// SIGKILL, a SIGTERM) answered exactly once.
func TestE2EWhatsApp(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := whatsapptest.New(t)
	e := newE2E(t, "whatsapp")
	e.configure(agentYAML(t, ag, "openai"), whatsappYAML(e, fake, fake.Token))
	p := e.start(startOpts{})
	url := "http://" + e.http + "/whatsapp/whatsapp"
	const ann = "4915550001"
	post := func(body []byte, secret string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, err := whatsapptest.Post(ctx, url, secret, body)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		return code
	}
	text := func(id, s string) []byte {
		return fake.Text(whatsapptest.Message{ID: id, From: ann, Name: "Ann", Text: s})
	}

	// Meta's verification handshake, and a forged notification.
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if code, body, err := whatsapptest.Verify(ctx, url, whatsapptest.DefaultVerifyToken, "8812345"); err != nil || code != 200 || body != "8812345" {
		t.Fatalf("handshake: %d %q %v, want 200 and the challenge", code, body, err)
	}
	if code, _, err := whatsapptest.Verify(ctx, url, "not-the-token", "1"); err != nil || code != http.StatusForbidden {
		t.Fatalf("handshake with another token: %d %v, want 403", code, err)
	}
	if code := post(text("wamid.forged", "forged"), "not-the-app-secret"); code != http.StatusUnauthorized {
		t.Fatalf("forged notification: %d, want 401", code)
	}

	// A message: 200 means stored; the answer quotes it.
	first := text("wamid.1", "hello whatsapp")
	if code := post(first, fake.AppSecret); code != http.StatusOK {
		t.Fatalf("notification: %d, want 200", code)
	}
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("200 answered while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello whatsapp" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	fake.Wait(t, e2eWait, "the reply", func() bool { return len(fake.Sent()) >= 1 })
	if s := fake.Sent()[0]; s.To != ann || s.Type != "text" || s.Text != "agent: hello whatsapp" || s.ReplyTo != "wamid.1" {
		t.Fatalf("sent %+v, want the answer to wamid.1", s)
	}

	// Meta redelivers it: 200 again, not run again.
	if code := post(first, fake.AppSecret); code != http.StatusOK {
		t.Fatalf("redelivery: %d, want 200", code)
	}
	e.waitInbound("duplicate", 1)
	if n := len(ag.Requests()); n != 1 {
		t.Fatalf("%d agent calls after a redelivery, want 1", n)
	}

	// A failed delivery status is logged.
	if code := post(fake.Statuses(whatsapptest.Status{ID: fake.Sent()[0].ID, Status: "failed", Recipient: ann,
		ErrorCode: 131026, Error: "Message undeliverable"}), fake.AppSecret); code != http.StatusOK {
		t.Fatalf("status notification: %d, want 200", code)
	}
	p.waitLog(map[string]string{"msg": "whatsapp: WhatsApp could not deliver a sent message: code 131026: Message undeliverable"}, e2eWait)

	// Store write-locked: herald cannot store, so Meta never gets a 200.
	// SIGKILL; Meta keeps redelivering, and the next instance answers once.
	e.waitIdle()
	release := e.lockStore()
	crash := text("wamid.3", "stored after a crash")
	if code := post(crash, fake.AppSecret); code == http.StatusOK {
		t.Fatal("200 answered for a message herald could not store")
	}
	e.kill(p)
	release()
	delivered := make(chan error, 1)
	go func() {
		_, err := whatsapptest.Deliver(ctx, url, fake.AppSecret, crash, 50*time.Millisecond)
		delivered <- err
	}()
	p = e.start(startOpts{})
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the reply to the message herald could not store", func() bool { return fake.RepliesTo("wamid.3") == 1 })

	// SIGTERM: exit 0 within the bound; Meta's retries while herald is
	// down reach the next instance.
	e.stop(p)
	down := text("wamid.4", "sent while herald is down")
	if code, err := whatsapptest.Post(ctx, url, fake.AppSecret, down); err == nil && code == http.StatusOK {
		t.Fatal("a stopped herald acknowledged a message")
	}
	go func() {
		_, err := whatsapptest.Deliver(ctx, url, fake.AppSecret, down, 50*time.Millisecond)
		delivered <- err
	}()
	p = e.start(startOpts{})
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the reply to the message sent while herald was down", func() bool { return fake.RepliesTo("wamid.4") == 1 })
	e.stop(p)

	for _, s := range []string{"hello whatsapp", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, s); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", s, n)
		}
	}
	for _, id := range []string{"wamid.1", "wamid.3", "wamid.4"} {
		if n := fake.RepliesTo(id); n != 1 {
			t.Errorf("%s: %d replies shown, want 1", id, n)
		}
	}
}

// TestE2EWhatsAppBadCredentials: an access token the Graph API rejects
// (code 190) shows the platform as failed in /status and `herald doctor`,
// herald stays ready and stops cleanly, and the token appears nowhere in
// its output.
func TestE2EWhatsAppBadCredentials(t *testing.T) {
	t.Parallel()
	fake := whatsapptest.New(t)
	e := newE2E(t, "whatsapp")
	const bad = "EAAG-revoked-token-0123456789"
	e.configure("  kind: echo\n", whatsappYAML(e, fake, bad))
	n := listenNotify(t)
	p := start(t, e.cfg, startOpts{env: []string{n.env()}})
	p.ready()
	testwait.For(t, "READY=1", func() bool { _, ok := n.find("READY=1"); return ok })
	pr := e.waitPhase("fatal")
	if !strings.Contains(pr.Error, "190") {
		t.Errorf("fatal platform without the Graph error in /status: %+v", pr)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform whatsapp") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL line for platform whatsapp:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
	if strings.Contains(p.output(), bad) || strings.Contains(out, bad) {
		t.Errorf("the rejected token appears in herald's output")
	}
}
