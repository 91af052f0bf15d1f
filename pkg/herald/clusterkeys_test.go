// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestClusterApprovalButtonMoves: two nodes, each with its own state_dir
// (so each its own approval-buttons.key), run a Telegram bot whose agent
// asks for approval with Approve and Deny buttons. The node owning the
// chat's partition shows the prompt and stops; the other node takes the
// partition (and the bot) over, re-attaches to the run, and accepts the
// Approve button the first node made: both sign buttons with the key the
// cluster shares. The agent gets exactly one answer and the user the
// run's reply.
func TestClusterApprovalButtonMoves(t *testing.T) {
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	fake, extra := telegramPlatform(t)
	ag := agenttest.NewRuns(t, agenttest.RunsOptions{Key: "hermes-key"})
	keyFile := filepath.Join(t.TempDir(), "hermes-key")
	if err := os.WriteFile(keyFile, []byte("hermes-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	agentConf := fmt.Sprintf("agent:\n  kind: hermes\n  url: %s\n  key: {file: %s}\n  approval_timeout: 10m", ag.URL, keyFile)
	ids := []string{"node-a", "node-b"}
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, extra, ids, func(_ int, c *testConfig) { c.Agent = agentConf })

	in := message.Inbound{Platform: "telegram", ChatType: message.ChatDirect, ChatID: fmt.Sprint(chat.ID), SenderID: fmt.Sprint(ann.ID)}
	owner := cluster.Owner(cluster.PartitionOf(in.SessionKey(true), clusterPartitions), ids)
	first, second := splitPair(nodes, owner)
	telegramHolder(t, nodes[0])
	fake.PushText(chat, ann, agenttest.InputApprove+" rm -rf /tmp/x")
	fake.Wait(t, testwait.Timeout, "the prompt", func() bool { return len(fake.Sent()) >= 1 })
	prompt := fake.Sent()[0]
	if len(prompt.Buttons) != 2 || prompt.Buttons[0].Text != "Approve" {
		t.Fatalf("prompt %+v, want Approve and Deny buttons", prompt)
	}

	first.stop(t)
	waitStatus(t, second.dir, func(s adminapi.StatusReport) bool {
		c := s.Cluster
		return c != nil && len(c.Members) == 1 && len(c.UnheldPartitions) == 0 && slices.Contains(c.Platforms, "telegram")
	})
	second.p.waitLog(map[string]string{"msg": "agent: re-attaching to the run"}, testwait.Timeout)
	fake.PushCallback(chat, ann, prompt.MessageID, prompt.Buttons[0].CallbackData)
	fake.Wait(t, testwait.Timeout, "the run's reply", func() bool { return telegramAnswers(fake, "run: approved rm -rf /tmp/x") >= 1 })
	second.stop(t)

	var texts []string
	for _, m := range fake.Sent() {
		texts = append(texts, m.Text)
	}
	t.Logf("the user sees %q", texts)
	if a := ag.Approvals(); len(a) != 1 || a[0].Choice != "once" || a[0].Status != 200 {
		t.Fatalf("the agent got the approvals %+v, want one \"once\"", a)
	}
	if telegramAnswers(fake, "Approved.") != 1 || telegramAnswers(fake, "run: approved rm -rf /tmp/x") != 1 {
		t.Fatalf("the user sees %q, want one \"Approved.\" and one reply of the run", texts)
	}
	for _, s := range texts {
		if strings.Contains(s, "does not answer the pending request") {
			t.Fatalf("the button was refused: %q", texts)
		}
	}
	noConflict(t, nodes)
}
