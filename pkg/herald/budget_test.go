// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
)

// limits.per_user: over the daily budget the user is told when they can
// continue and the agent is not called; `herald status` shows the user
// against the limit.
func TestPerUserBudget(t *testing.T) {
	dir := t.TempDir()
	recv := webhooktest.NewReceiver(t)
	top := "limits:\n  per_user:\n    turns_per_day: 1\n"
	cfg := writeConfig(t, testConfig{Dir: dir, ReplyURL: recv.URL, Top: top})
	p := start(t, cfg, startOpts{})
	addr := p.ready()
	t.Cleanup(func() {
		p.signal(os.Interrupt)
		p.wait(10 * time.Second)
	})
	for _, m := range []struct{ id, text string }{{"b1", "first"}, {"b2", "second"}} {
		if code, err := post(t, addr, m.id, "conv", m.text); err != nil || code/100 != 2 {
			t.Fatalf("post %s: %d %v", m.id, code, err)
		}
	}
	got := recv.WaitRequests(t, 2, 20*time.Second)
	texts := []string{got[0].Reply.Text, got[1].Reply.Text}
	joined := strings.Join(texts, "|")
	if !strings.Contains(joined, "echo: first") || !strings.Contains(joined, "You have sent 1 messages today") || strings.Contains(joined, "echo: second") {
		t.Fatalf("replies %q", texts)
	}
	p.waitLog(map[string]string{"msg": `user "u1" is over limits.per_user (1 per day); the message does not reach the agent`}, 10*time.Second)
	out, err := runHerald(t, "status", "--config", cfg, "--admin-socket", filepath.Join(dir, "admin.sock"))
	if !strings.Contains(out, "top users today (limits.per_user):") || !strings.Contains(out, "u1") || !strings.Contains(out, "1/1 today") {
		t.Fatalf("herald status (%v):\n%s", err, out)
	}
}
