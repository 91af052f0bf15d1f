// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/signal"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
)

// Signal through a fake signal-cli daemon in the sandbox's network
// namespace, herald under the sandbox's systemd (echo agent): one reply per
// message across systemctl restart, and across a SIGKILL (systemd restarts
// herald) while a message waits in the daemon; a SIGKILL while a reply is
// on the wire follows interrupted_send, since Signal cannot deduplicate a
// send.
func TestSignalRestartAndSIGKILL(t *testing.T) {
	for _, tt := range []struct {
		policy string
		// held is what the user sees of the reply whose send was cut.
		held []string
	}{
		{signal.ResendMarked, []string{"echo: four", signal.RecoveredMark + "\necho: four"}},
		{signal.AtMostOnce, []string{"echo: four"}},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			fake := signaltest.NewOn(t, e.s.Listen, "+15550100")
			e.writeConfig(sendOnceConfig(fmt.Sprintf(`  signal:
    allow_all: true
    url: %s
    request_timeout: 5s
    interrupted_send: %s
`, fake.URL, tt.policy)))
			// seen is what the user sees in reply to text.
			seen := func(text string) []string {
				var out []string
				for _, s := range fake.Sent() {
					if strings.HasSuffix(s.Message, "echo: "+text) {
						out = append(out, s.Message)
					}
				}
				return out
			}
			opened := func(n int) {
				t.Helper()
				fake.Wait(t, sendOnceWait, fmt.Sprintf("%d event streams", n), func() bool { return fake.Opened() >= n })
			}
			e.startReady()
			opened(1)
			fake.Push(fake.Message("one"))
			fake.Wait(t, sendOnceWait, "the reply to one", func() bool { return len(seen("one")) == 1 })

			// systemctl restart with a message just written to the stream:
			// stored before the stop, or sent again to the next instance.
			fake.Push(fake.Message("two"))
			e.systemctl("restart", "herald.service")
			opened(2)
			fake.Wait(t, sendOnceWait, "the reply to two", func() bool { return len(seen("two")) >= 1 })

			// SIGKILL while a message waits in the daemon (herald's stream is
			// cut first, so it arrives while no herald listens): systemd
			// restarts herald, which asks for it with Last-Event-ID.
			e.settled()
			fake.Down()
			fake.Push(fake.Message("three"))
			e.killDuringSend(func() {})
			fake.Up()
			fake.Wait(t, sendOnceWait, "the reply to three", func() bool { return len(seen("three")) >= 1 })

			// SIGKILL while the reply is on the wire: the daemon sent it,
			// the answer never comes. Signal cannot deduplicate the send:
			// interrupted_send decides.
			e.settled()
			fake.Script(signaltest.Reply{Hold: true})
			fake.Push(fake.Message("four"))
			e.killDuringSend(func() {
				fake.Wait(t, sendOnceWait, "the held reply", func() bool { return fake.Held() == 1 })
			})
			if tt.policy == signal.AtMostOnce {
				e.waitJournalText("herald.service", nil, "reply delivery outcome unknown; the platform's policy is not to send it again: ", sendOnceWait)
			} else {
				fake.Wait(t, sendOnceWait, "the marked resend", func() bool { return len(seen("four")) == 2 })
			}
			e.settled()
			for _, text := range []string{"one", "two", "three"} {
				if got := seen(text); len(got) != 1 {
					t.Errorf("%q: the user sees %q, want one reply", text, got)
				}
			}
			if got := seen("four"); strings.Join(got, "|") != strings.Join(tt.held, "|") {
				t.Errorf("four: the user sees %q, want %q", got, tt.held)
			}
		})
	}
}
