// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/adapter/telegram"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// A SIGKILL while a send is on the wire, on the platforms that cannot
// deduplicate a send: the platform's fake (served in the sandbox's network
// namespace) creates the reply but holds its answer; herald.service is
// killed with SIGKILL, systemd restarts it (Restart=on-failure), and the
// test counts the replies the user sees.

// sendOnceWait bounds each wait for something to happen (a restart takes
// RestartSec=2s plus the start).
const sendOnceWait = 60 * time.Second

// sendOnceConfig is herald.yaml with one platform section (indented by two
// spaces) beside the webhook of defaultConfig.
func sendOnceConfig(platform string) string {
	return defaultConfig + platform
}

// credential installs a credential file for LoadCredential=.
func (e *env) credential(name, value string) {
	e.t.Helper()
	e.sh(fmt.Sprintf("umask 077 && printf '%%s\\n' %q > /etc/herald/credentials/%s", value, name))
}

// killDuringSend SIGKILLs herald.service once held() reports the reply
// created, and waits until systemd has restarted it and it is ready.
func (e *env) killDuringSend(held func()) {
	e.t.Helper()
	held()
	before := e.show("herald.service", "MainPID", "NRestarts")
	e.systemctl("kill", "--signal=KILL", "herald.service")
	var p map[string]string
	if !testwait.Until(sendOnceWait, func() bool {
		p = e.show("herald.service", "MainPID", "ActiveState", "SubState", "NRestarts")
		return p["MainPID"] != before["MainPID"] && p["MainPID"] != "0" && p["ActiveState"] == "active" && p["SubState"] == "running" && p["NRestarts"] != before["NRestarts"]
	}) {
		e.t.Fatalf("herald was not restarted after the SIGKILL: %v", p)
	}
}

// settled waits until the new instance has no reply pending.
func (e *env) settled() {
	e.t.Helper()
	var doc map[string]any
	if !testwait.Until(sendOnceWait, func() bool {
		doc, _ = e.statusJSON()
		h, _ := doc["herald"].(map[string]any)
		n, ok := h["replies_pending"].(float64)
		return ok && n == 0
	}) {
		e.t.Fatalf("replies still pending: %v", doc)
	}
}

// Slack: the next instance finds the reply by its metadata in the
// conversation's history and does not post it again: one reply.
func TestSIGKILLDuringSendSlack(t *testing.T) {
	e := newEnv(t, envOpts{})
	fake := slacktest.New(slacktest.Options{Listen: e.s.Listen})
	t.Cleanup(fake.Close)
	e.credential("slack-app", fake.AppToken())
	e.credential("slack-bot", fake.BotToken())
	e.writeConfig(sendOnceConfig(fmt.Sprintf(`  slack:
    allow_all: true
    app_token: {credential: slack-app}
    bot_token: {credential: slack-bot}
    api_url: %s
`, fake.APIURL())))
	e.startReady()
	fake.WaitHellos(t, 1, sendOnceWait)
	fake.Inject(slacktest.Post, fakeserver.Blackhole())
	fake.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Text: "hello"})
	e.killDuringSend(func() {
		held := fake.WaitMessages(t, 1, sendOnceWait)
		if held[0].Display() != "echo: hello" {
			t.Fatalf("held reply %+v", held[0])
		}
		fake.Heal(slacktest.Post)
	})
	e.waitJournal("herald.service", map[string]string{"MESSAGE": "slack: the reply whose send was interrupted is in the conversation; not posting it again"}, sendOnceWait)
	e.settled()
	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("the user sees %d replies, want 1: %+v", len(msgs), msgs)
	}
	// The next message is answered as usual.
	fake.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Text: "again"})
	if got := fake.WaitMessages(t, 2, sendOnceWait); got[1].Display() != "echo: again" || len(got) != 2 {
		t.Fatalf("after recovery: %+v", got)
	}
}

// Telegram has no history: interrupted_send decides. resend_marked (the
// default) shows the reply a second time, marked; at_most_once shows it
// once.
func TestSIGKILLDuringSendTelegram(t *testing.T) {
	for _, tt := range []struct {
		policy string
		want   []string
	}{
		{telegram.ResendMarked, []string{"echo: hello", telegram.RecoveredMark + "\necho: hello"}},
		{telegram.AtMostOnce, []string{"echo: hello"}},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			fake := telegramtest.NewOn(t, e.s.Listen, "")
			e.credential("telegram-token", fake.Token)
			policy := ""
			if tt.policy != telegram.ResendMarked { // the default is left implicit
				policy = "    interrupted_send: " + tt.policy + "\n"
			}
			e.writeConfig(sendOnceConfig(fmt.Sprintf(`  telegram:
    allow_all: true
    token: {credential: telegram-token}
    api_url: %s
    poll_timeout: 5s
%s`, fake.URL, policy)))
			e.startReady()
			fake.Script("sendMessage", telegramtest.Hold())
			chat := telegramtest.Chat{ID: 555, Type: "private"}
			fake.PushText(chat, telegramtest.User{ID: 555, FirstName: "Ann"}, "hello")
			e.killDuringSend(func() {
				fake.Wait(t, sendOnceWait, "the held reply", func() bool { return len(fake.Transcript("555")) == 1 })
			})
			if tt.policy == telegram.AtMostOnce {
				// The journal's MESSAGE carries the error after this text.
				e.waitJournalText("herald.service", nil, "reply delivery outcome unknown; the platform's policy is not to send it again: ", sendOnceWait)
			} else {
				fake.Wait(t, sendOnceWait, "the marked resend", func() bool { return len(fake.Transcript("555")) == 2 })
			}
			e.settled()
			if got := fake.Transcript("555"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("the user sees %q, want %q", got, tt.want)
			}
		})
	}
}
