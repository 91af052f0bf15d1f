// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
)

// limits.per_user: over the daily budget the user is told when they can
// continue and the agent is not called, also after a restart; `herald
// status` shows the user against the limit.
func TestPerUserBudget(t *testing.T) {
	ag := agenttest.New(t)
	recv := webhooktest.NewReceiver(t)
	e := newE2E(t, "webhook")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: %s
`, recv.URL))
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "limits:\n  per_user:\n    turns_per_day: 1\n")
	f.Close()
	p := e.start(startOpts{})
	over := map[string]string{"msg": `user "u1" is over limits.per_user (1 per day); the message does not reach the agent`}
	if code, err := post(t, e.http, "b1", "conv", "first"); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %v", code, err)
	}
	waitAgent(t, ag, 1)
	if code, err := post(t, e.http, "b2", "conv", "second"); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %v", code, err)
	}
	p.waitLog(over, e2eWait)
	got := recv.WaitRequests(t, 2, e2eWait)
	notice := got[1].Reply.Text
	if !strings.Contains(got[0].Reply.Text+got[1].Reply.Text, "You have sent 1 messages today, the most allowed. You can continue at ") {
		t.Fatalf("replies %q, %q: no notice", got[0].Reply.Text, notice)
	}

	// The count is in the store: after a restart the user is still over.
	e.stop(p)
	p = e.start(startOpts{})
	if code, err := post(t, e.http, "b3", "conv", "third"); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %v", code, err)
	}
	p.waitLog(over, e2eWait)
	if n := len(ag.Requests()); n != 1 || ag.Requests()[0].LastUser() != "first" {
		t.Fatalf("the agent got %d requests, want only the first message", n)
	}
	out, err := runHerald(t, "status", "--config", e.cfg, "--admin-socket", filepath.Join(e.dir, "admin.sock"))
	if !strings.Contains(out, "top users today (limits.per_user):") || !strings.Contains(out, "u1") || !strings.Contains(out, "1/1 today") {
		t.Fatalf("herald status (%v):\n%s", err, out)
	}
	e.stop(p)
}
