// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// wecomYAML is the platform section for the fake, with the application
// secret given.
func wecomYAML(e *e2e, fake *wecomtest.Fake, secret string) string {
	return fmt.Sprintf(`  wecom:
    allow_all: true
    corp_id: %s
    agent_id: %d
    secret: {file: %s}
    token: {file: %s}
    encoding_aes_key: {file: %s}
    api_url: %s
    request_timeout: 1s
`, fake.CorpID, fake.AgentID, e.secret("wecom-secret", secret), e.secret("wecom-token", fake.Crypt.Token),
		e.secret("wecom-aes-key", fake.Crypt.EncodingAESKey), fake.URL)
}

// TestE2EWeCom: an encrypted, signed WeCom callback → herald → openai → a
// text message from the application to the member; 200 only once stored;
// WeCom's retries (after a duplicate, a store that cannot write and a
// SIGKILL, a SIGTERM) answered exactly once.
func TestE2EWeCom(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := wecomtest.New(t)
	e := newE2E(t, "wecom")
	e.configure(agentYAML(t, ag, "openai"), wecomYAML(e, fake, fake.Secret))
	p := e.start(startOpts{})
	url := "http://" + e.http + "/wecom/wecom"
	const member = "zhangsan"
	post := func(cb wecomtest.Callback) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, err := wecomtest.Post(ctx, url, cb)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		return code
	}
	text := func(id, s string) wecomtest.Callback {
		return fake.Text(wecomtest.Message{ID: id, From: member, Text: s})
	}
	replies := func(s string) int {
		n := 0
		for _, m := range fake.To(member) {
			if m.Text == "agent: "+s {
				n++
			}
		}
		return n
	}

	// WeCom's URL verification, and a forged callback.
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if code, body, err := wecomtest.Verify(ctx, url, fake.Crypt.Verification("8812345")); err != nil || code != 200 || body != "8812345" {
		t.Fatalf("URL verification: %d %q %v, want 200 and the echostr", code, body, err)
	}
	if code := post(text("7000000000000000000", "forged").Tampered()); code != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d, want 401", code)
	}

	// A message: 200 means stored; the answer goes to the member.
	first := text("7000000000000000001", "hello wecom")
	if code := post(first); code != http.StatusOK {
		t.Fatalf("callback: %d, want 200", code)
	}
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("200 answered while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello wecom" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	testwait.For(t, "the reply", func() bool { return len(fake.Sent()) >= 1 })
	if s := fake.Sent()[0]; s.ToUser != member || s.Text != "agent: hello wecom" || s.AgentID != fake.AgentID {
		t.Fatalf("sent %+v, want the answer to %s", s, member)
	}

	// WeCom retries it: 200 again, not run again.
	if code := post(first); code != http.StatusOK {
		t.Fatalf("retry: %d, want 200", code)
	}
	e.waitInbound("duplicate", 1)
	if n := len(ag.Requests()); n != 1 {
		t.Fatalf("%d agent calls after a retry, want 1", n)
	}

	// Store write-locked: herald cannot store, so WeCom never gets a 200.
	// SIGKILL; WeCom keeps retrying, and the next instance answers once.
	e.waitIdle()
	release := e.lockStore()
	crash := text("7000000000000000003", "stored after a crash")
	if code := post(crash); code == http.StatusOK {
		t.Fatal("200 answered for a message herald could not store")
	}
	e.kill(p)
	release()
	delivered := make(chan error, 1)
	go func() {
		_, err := wecomtest.Deliver(ctx, url, crash, 50*time.Millisecond)
		delivered <- err
	}()
	p = e.start(startOpts{})
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the reply to the message herald could not store", func() bool { return replies("stored after a crash") == 1 })

	// SIGTERM: exit 0 within the bound; WeCom's retries while herald is
	// down reach the next instance. The access token expired meanwhile:
	// the reply renews it.
	e.stop(p)
	fake.ExpireTokens()
	down := text("7000000000000000004", "sent while herald is down")
	if code, err := wecomtest.Post(ctx, url, down); err == nil && code == http.StatusOK {
		t.Fatal("a stopped herald acknowledged a message")
	}
	go func() {
		_, err := wecomtest.Deliver(ctx, url, down, 50*time.Millisecond)
		delivered <- err
	}()
	p = e.start(startOpts{})
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the reply to the message sent while herald was down", func() bool { return replies("sent while herald is down") == 1 })
	e.stop(p)

	for _, s := range []string{"hello wecom", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, s); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", s, n)
		}
		if n := replies(s); n != 1 {
			t.Errorf("%q: %d replies shown, want 1", s, n)
		}
	}
}

// TestE2EWeComBadCredentials: an application secret WeCom rejects
// (errcode 40001) shows the platform as failed in /status and `herald
// doctor`, herald stays ready and stops cleanly, and the secret appears
// nowhere in its output.
func TestE2EWeComBadCredentials(t *testing.T) {
	t.Parallel()
	fake := wecomtest.New(t)
	e := newE2E(t, "wecom")
	const bad = "revoked-wecom-application-secret-0123456789"
	e.configure("  kind: echo\n", wecomYAML(e, fake, bad))
	n := listenNotify(t)
	p := start(t, e.cfg, startOpts{env: []string{n.env()}})
	p.ready()
	testwait.For(t, "READY=1", func() bool { _, ok := n.find("READY=1"); return ok })
	pr := e.waitPhase("fatal")
	if !strings.Contains(pr.Error, "40001") {
		t.Errorf("fatal platform without WeCom's errcode in /status: %+v", pr)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform wecom") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL line for platform wecom:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
	if strings.Contains(p.output(), bad) || strings.Contains(out, bad) {
		t.Errorf("the rejected secret appears in herald's output")
	}
}
