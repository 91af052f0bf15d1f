// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestClusterMattermostLeaseMoves: two nodes run the same Mattermost bot;
// its cursor is kept in the cluster's store. The holder stops while the
// server refuses websockets, so the other node takes the lease over but
// cannot connect yet; a post made then, while no node receives, is caught
// up by the new holder once it connects (starting from the shared cursor,
// not from its own first connection) and answered exactly once.
func TestClusterMattermostLeaseMoves(t *testing.T) {
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	fake := mattermosttest.New(t, mattermosttest.DefaultToken)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(mattermosttest.DefaultToken), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`  mattermost:
    allow_all: true
    url: %s
    token: {file: %s}
    request_timeout: 2s
`, fake.URL, token)
	ids := []string{"node-a", "node-b"}
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, extra, ids)

	held, standby := holderAndStandby(t, nodes, "mattermost")
	answers := func(text string) int {
		n := 0
		for _, m := range fake.Sent() {
			if strings.Contains(m.Message, text) {
				n++
			}
		}
		return n
	}
	fake.Wait(t, testwait.Timeout, "the holder's websocket", func() bool { return fake.Connections() == 1 })
	fake.Post("dm", "ann", "one", "")
	fake.Wait(t, testwait.Timeout, "the answer to one", func() bool { return answers("one") >= 1 })

	// The holder leaves; the other node takes the lease but its websocket
	// is refused: nobody receives.
	fake.RefuseWebsocket(true)
	held.stop(t)
	waitStatus(t, standby.dir, func(s adminapi.StatusReport) bool {
		return slices.Contains(s.Cluster.Platforms, "mattermost")
	})
	dials := fake.Dials()
	fake.Wait(t, testwait.Timeout, "the new holder's refused dial", func() bool { return fake.Dials() > dials })
	if n := fake.Connections(); n != 0 {
		t.Fatalf("%d websockets while the server refuses them", n)
	}
	fake.Post("dm", "ann", "two, while the platform moved", "")
	moved := time.Now()
	fake.RefuseWebsocket(false)
	fake.Wait(t, testwait.Timeout, "the answer to the post made while the platform moved", func() bool { return answers("two, while the platform moved") >= 1 })
	t.Logf("the post made while the platform moved answered %v later", time.Since(moved).Round(time.Millisecond))
	standby.stop(t)

	for _, text := range []string{"one", "two, while the platform moved"} {
		if n := answers(text); n != 1 {
			t.Errorf("%q answered %d times, want 1", text, n)
		}
	}
	// Neither node keeps the cursor in its own state directory.
	for _, n := range nodes {
		if _, err := os.Stat(filepath.Join(n.dir, "state", "platforms", "mattermost", "cursor.json")); !os.IsNotExist(err) {
			t.Errorf("node %s has a cursor file (%v), want the cursor in the store only", n.id, err)
		}
	}
}
