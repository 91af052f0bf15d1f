// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
)

// TestWhatsAppExactlyOnceAcrossRestarts: the WhatsApp fake serves the
// Graph API in the sandbox's network namespace and posts signed webhooks
// to herald.socket the way Meta does (again until answered 200). Across
// `systemctl restart`, a SIGKILL (systemd restarts herald) and a
// `systemctl stop` (the socket starts herald again for the next webhook),
// every message gets exactly one reply.
func TestWhatsAppExactlyOnceAcrossRestarts(t *testing.T) {
	e := newEnv(t, envOpts{})
	fake := whatsapptest.NewOn(t, e.s.Listen)
	e.credential("whatsapp-token", fake.Token)
	e.credential("whatsapp-app-secret", fake.AppSecret)
	e.credential("whatsapp-verify-token", whatsapptest.DefaultVerifyToken)
	e.writeConfig(defaultConfig + fmt.Sprintf(`  whatsapp:
    allow_all: true
    phone_number_id: "%s"
    access_token: {credential: whatsapp-token}
    app_secret: {credential: whatsapp-app-secret}
    verify_token: {credential: whatsapp-verify-token}
    graph_url: %s
`, fake.PhoneNumberID, fake.URL))
	e.startReady()
	meta := whatsapptest.Sender{Client: e.http, URL: "http://127.0.0.1:8089/whatsapp/whatsapp", AppSecret: fake.AppSecret}
	const ann = "4915550001"
	// deliver posts wamid id until herald answers 200, in the background.
	deliver := func(id, text string) chan error {
		body := fake.Text(whatsapptest.Message{ID: id, From: ann, Text: text})
		done := make(chan error, 1)
		go func() {
			_, err := meta.Deliver(e.ctx, body, 100*time.Millisecond)
			done <- err
		}()
		return done
	}
	answered := func(id string, done chan error) {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		fake.Wait(t, sendOnceWait, "the reply to "+id, func() bool { return fake.RepliesTo(id) >= 1 })
	}

	answered("wamid.1", deliver("wamid.1", "before the restart"))

	// systemctl restart while Meta delivers the next message.
	done := deliver("wamid.2", "during the restart")
	e.systemctl("restart", "herald.service")
	answered("wamid.2", done)

	// SIGKILL: systemd restarts herald (Restart=on-failure); the message
	// sent meanwhile is retried by Meta until the new instance stores it.
	e.settled()
	before := e.mainPID()
	e.systemctl("kill", "--signal=KILL", "herald.service")
	done = deliver("wamid.3", "during the SIGKILL")
	answered("wamid.3", done)
	if p := e.show("herald.service", "MainPID", "NRestarts"); p["MainPID"] == before || p["NRestarts"] != "1" {
		t.Fatalf("herald was not restarted by systemd after the SIGKILL: %v", p)
	}

	// Stopped, with herald.socket listening: the webhook starts herald.
	e.settled()
	e.systemctl("stop", "herald.service")
	answered("wamid.4", deliver("wamid.4", "socket activated"))

	// Meta redelivers an old notification: stored once, not answered again.
	code, err := meta.Post(e.ctx, fake.Text(whatsapptest.Message{ID: "wamid.1", From: ann, Text: "before the restart"}))
	if err != nil || code != http.StatusOK {
		t.Fatalf("redelivery: %d %v, want 200", code, err)
	}
	e.settled()
	for _, id := range []string{"wamid.1", "wamid.2", "wamid.3", "wamid.4"} {
		if n := fake.RepliesTo(id); n != 1 {
			t.Errorf("%s: %d replies shown, want 1", id, n)
		}
	}
	if n := len(fake.Sent()); n != 4 {
		t.Errorf("%d messages sent, want 4", n)
	}
}
