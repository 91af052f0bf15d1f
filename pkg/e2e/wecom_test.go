// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestWeComExactlyOnceAcrossRestarts: the WeCom fake serves the server API
// in the sandbox's network namespace and posts encrypted, signed callbacks
// to herald.socket the way WeCom does (again until answered 200). Across
// `systemctl restart`, a SIGKILL (systemd restarts herald) and a
// `systemctl stop` (the socket starts herald again for the next callback),
// every message gets exactly one reply, and an access token that expired
// meanwhile is renewed.
func TestWeComExactlyOnceAcrossRestarts(t *testing.T) {
	e := newEnv(t, envOpts{})
	fake := wecomtest.NewOn(t, e.s.Listen)
	e.credential("wecom-secret", fake.Secret)
	e.credential("wecom-token", fake.Crypt.Token)
	e.credential("wecom-aes-key", fake.Crypt.EncodingAESKey)
	e.writeConfig(defaultConfig + fmt.Sprintf(`  wecom:
    allow_all: true
    corp_id: %s
    agent_id: %d
    secret: {credential: wecom-secret}
    token: {credential: wecom-token}
    encoding_aes_key: {credential: wecom-aes-key}
    api_url: %s
`, fake.CorpID, fake.AgentID, fake.URL))
	e.startReady()
	wecom := wecomtest.Sender{Client: e.http, URL: "http://127.0.0.1:8089/wecom/wecom"}
	const member = "zhangsan"
	replies := func(text string) int {
		n := 0
		for _, s := range fake.To(member) {
			if s.Text == "echo: "+text {
				n++
			}
		}
		return n
	}
	// deliver posts message id until herald answers 200, in the background.
	deliver := func(id, text string) chan error {
		cb := fake.Text(wecomtest.Message{ID: id, From: member, Text: text})
		done := make(chan error, 1)
		go func() {
			_, err := wecom.Deliver(e.ctx, cb, 100*time.Millisecond)
			done <- err
		}()
		return done
	}
	answered := func(text string, done chan error) {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		testwait.Within(t, sendOnceWait, "the reply to "+text, func() bool { return replies(text) >= 1 })
	}

	answered("before the restart", deliver("7100000000000000001", "before the restart"))
	if d, _, out := e.doctor(); d.find("platform wecom") == nil || d.find("platform wecom").Result != "PASS" {
		t.Errorf("herald doctor does not show platform wecom as PASS:\n%s", out)
	}

	// systemctl restart while WeCom delivers the next message.
	done := deliver("7100000000000000002", "during the restart")
	e.systemctl("restart", "herald.service")
	answered("during the restart", done)

	// SIGKILL: systemd restarts herald (Restart=on-failure); the message
	// sent meanwhile is retried by WeCom until the new instance stores it.
	e.settled()
	before := e.mainPID()
	e.systemctl("kill", "--signal=KILL", "herald.service")
	done = deliver("7100000000000000003", "during the SIGKILL")
	answered("during the SIGKILL", done)
	if p := e.show("herald.service", "MainPID", "NRestarts"); p["MainPID"] == before || p["NRestarts"] != "1" {
		t.Fatalf("herald was not restarted by systemd after the SIGKILL: %v", p)
	}

	// Stopped, with herald.socket listening: the callback starts herald,
	// whose access token WeCom no longer accepts (42001): it renews it.
	e.settled()
	e.systemctl("stop", "herald.service")
	fake.ExpireTokens()
	answered("socket activated", deliver("7100000000000000004", "socket activated"))

	// WeCom retries an old callback: stored once, not answered again.
	code, err := wecom.Post(e.ctx, fake.Text(wecomtest.Message{ID: "7100000000000000001", From: member, Text: "before the restart"}))
	if err != nil || code != http.StatusOK {
		t.Fatalf("retry: %d %v, want 200", code, err)
	}
	e.settled()
	for _, s := range []string{"before the restart", "during the restart", "during the SIGKILL", "socket activated"} {
		if n := replies(s); n != 1 {
			t.Errorf("%q: %d replies shown, want 1", s, n)
		}
	}
	if n := len(fake.Sent()); n != 4 {
		t.Errorf("%d messages sent, want 4", n)
	}
}
