// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// clusterPartitions is cluster.partitions of the cluster tests.
const clusterPartitions = 8

// clusterTestNode is one herald of a test cluster.
type clusterTestNode struct {
	id, dir, addr string
	p             *proc
}

// startClusterNodes starts one herald per id on the JetStream server at
// natsURL, in cluster mode, each with the webhook platform (replies to
// replyURL) and the platforms of extra, and waits until every node sees
// them all as members and every partition held.
func startClusterNodes(t *testing.T, natsURL, replyURL, extra string, ids ...string) []*clusterTestNode {
	t.Helper()
	top := fmt.Sprintf(`store:
  backend: nats
  nats:
    urls: [%q]
    replicas: 1
cluster:
  enabled: true
  node_id: %%s
  partitions: %d
  lease_ttl: 5s
`, natsURL, clusterPartitions)
	var nodes []*clusterTestNode
	for _, id := range ids {
		n := &clusterTestNode{id: id, dir: t.TempDir(), addr: freePort(t)}
		cfg := writeConfig(t, testConfig{Dir: n.dir, HTTP: n.addr, ReplyURL: replyURL, Top: fmt.Sprintf(top, id), Extra: extra})
		n.p = start(t, cfg, startOpts{})
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		n.p.ready()
	}
	for _, n := range nodes {
		waitStatus(t, n.dir, func(s adminapi.StatusReport) bool {
			c := s.Cluster
			return c != nil && c.Member && len(c.Members) == len(ids) && len(c.UnheldPartitions) == 0
		})
	}
	return nodes
}

// stop stops n with SIGTERM and wants a clean exit.
func (n *clusterTestNode) stop(t *testing.T) {
	t.Helper()
	n.p.signal(syscall.SIGTERM)
	if code := n.p.wait(30 * time.Second); code != 0 {
		t.Fatalf("node %s: exit %d", n.id, code)
	}
}

// ownerOf is the node that owns the webhook conversation conv among ids.
func ownerOf(conv string, ids []string) string {
	in := message.Inbound{Platform: "webhook", ChatType: message.ChatDirect, ChatID: conv}
	return cluster.Owner(cluster.PartitionOf(in.SessionKey(true), clusterPartitions), ids)
}

// TestClusterWebhookAnyNode: two nodes in cluster mode on one NATS. A
// webhook message reaching a node that does not own its conversation's
// partition is stored there and answered exactly once, by the owner (told
// at once through a wake, not at its next refresh); so is one reaching the
// owner.
func TestClusterWebhookAnyNode(t *testing.T) {
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	ids := []string{"node-a", "node-b"}
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, "", ids...)

	// For each receiving node: two conversations owned by the other node
	// and one owned by itself.
	var convs []string
	for _, n := range nodes {
		other, own := 0, 0
		for i := 0; other < 2 || own < 1; i++ {
			conv := fmt.Sprintf("conv-%s-%d", n.id, i)
			if ownerOf(conv, ids) != n.id && other < 2 {
				other++
			} else if ownerOf(conv, ids) == n.id && own < 1 {
				own++
			} else {
				continue
			}
			begin := time.Now()
			if code, err := post(t, n.addr, "id-"+conv, conv, "hi "+conv); err != nil || code != http.StatusAccepted {
				t.Fatalf("post %s to %s: %d %v", conv, n.id, code, err)
			}
			convs = append(convs, conv)
			if !testwait.Until(testwait.Timeout, func() bool { return repliesTo(recv, conv) >= 1 }) {
				t.Fatalf("%s (owner %s, received by %s): no reply", conv, ownerOf(conv, ids), n.id)
			}
			t.Logf("%s: owner %s, received by %s, answered in %v", conv, ownerOf(conv, ids), n.id, time.Since(begin).Round(time.Millisecond))
			if owner := ownerOf(conv, ids); owner != n.id {
				// The owner was woken for the partition.
				in := message.Inbound{Platform: "webhook", ChatType: message.ChatDirect, ChatID: conv}
				p := cluster.PartitionOf(in.SessionKey(true), clusterPartitions)
				for _, o := range nodes {
					if o.id == owner {
						o.p.waitLog(map[string]string{"msg": "cluster: wake", "partition": fmt.Sprint(p)}, testwait.Timeout)
					}
				}
			}
		}
	}
	// A stopped node has finished every delivery it began: counted now,
	// a reply sent twice would show.
	for _, n := range nodes {
		n.stop(t)
	}
	for _, conv := range convs {
		if n := repliesTo(recv, conv); n != 1 {
			t.Errorf("%s: %d replies shown, want 1", conv, n)
		}
	}
	if d := recv.Duplicates(); d != 0 {
		t.Errorf("%d replies sent twice (absorbed by the receiver's deduplication)", d)
	}
}

// repliesTo counts the distinct replies the receiver shows for conv.
func repliesTo(recv *webhooktest.Receiver, conv string) int {
	n := 0
	for _, r := range recv.Delivered() {
		if r.ConversationID == conv {
			n++
		}
	}
	return n
}

// TestClusterTelegramLease: two nodes run the same Telegram bot. Exactly
// one polls it (no 409 Conflict anywhere) and the other stands by; a
// message is answered once. When the holder stops, it releases the lease
// and the other node takes the bot over (the time is logged) and answers
// the next message.
func TestClusterTelegramLease(t *testing.T) {
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	fake := telegramtest.New(t, "")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(fake.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`  telegram:
    allow_all: true
    token: {file: %s}
    api_url: %s
    poll_timeout: 1s
    request_timeout: 2s
`, token, fake.URL)
	ids := []string{"node-a", "node-b"}
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, extra, ids...)

	holder := func(n *clusterTestNode) string {
		var h string
		waitStatus(t, n.dir, func(s adminapi.StatusReport) bool {
			h = s.Cluster.PlatformHolders["telegram"]
			return h != "" && slices.Contains(s.Cluster.Platforms, "telegram") == (h == n.id)
		})
		return h
	}
	first := holder(nodes[0])
	if h := holder(nodes[1]); h != first {
		t.Fatalf("node-a sees %q holding telegram, node-b %q", first, h)
	}
	var held, standby *clusterTestNode
	for _, n := range nodes {
		if n.id == first {
			held = n
		} else {
			standby = n
		}
	}
	// The standby node's telegram stays in standby: its STATUS= part.
	waitStatus(t, standby.dir, func(s adminapi.StatusReport) bool {
		for _, p := range s.Platforms {
			if p.Name == "telegram" {
				return p.Phase == "standby"
			}
		}
		return false
	})

	chat := telegramtest.Chat{ID: 555, Type: "private"}
	ann := telegramtest.User{ID: 555, FirstName: "Ann"}
	answered := func(text string) int {
		n := 0
		for _, m := range fake.Sent() {
			if strings.Contains(m.Text, text) {
				n++
			}
		}
		return n
	}
	fake.PushText(chat, ann, "one")
	fake.Wait(t, testwait.Timeout, "the answer to one", func() bool { return answered("one") >= 1 })

	begin := time.Now()
	held.stop(t)
	stopped := time.Now()
	waitStatus(t, standby.dir, func(s adminapi.StatusReport) bool {
		return slices.Contains(s.Cluster.Platforms, "telegram")
	})
	t.Logf("telegram taken over %v after the holder's stop began (%v after it exited); lease TTL 5s",
		time.Since(begin).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	fake.PushText(chat, ann, "two")
	fake.Wait(t, testwait.Timeout, "the answer to two", func() bool { return answered("two") >= 1 })
	standby.stop(t)

	for _, text := range []string{"one", "two"} {
		if n := answered(text); n != 1 {
			t.Errorf("%q answered %d times, want 1", text, n)
		}
	}
	for _, n := range nodes {
		if out := n.p.output(); strings.Contains(out, "409 Conflict") {
			t.Errorf("node %s saw a 409 Conflict: two pollers at once", n.id)
		}
	}
}

// TestClusterNATSDownAtStart: a cluster node that cannot reach NATS at
// start is up and says so, is no member and holds nothing; once NATS
// answers it joins, holds every partition (it is alone) and answers.
func TestClusterNATSDownAtStart(t *testing.T) {
	srv := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	proxy.Cut()
	recv := webhooktest.NewReceiver(t)
	dir, addr := t.TempDir(), freePort(t)
	top := fmt.Sprintf("store:\n  backend: nats\n  nats:\n    urls: [%q]\n    replicas: 1\ncluster:\n  enabled: true\n  node_id: solo\n  partitions: %d\n  lease_ttl: 5s\n", proxy.URL(), clusterPartitions)
	p := start(t, writeConfig(t, testConfig{Dir: dir, HTTP: addr, ReplyURL: recv.URL, Top: top}), startOpts{})
	p.ready()
	waitStatus(t, dir, func(s adminapi.StatusReport) bool {
		return s.Cluster != nil && !s.Cluster.Member && len(s.Cluster.Partitions) == 0 && s.Store != nil && !s.Store.Writable
	})
	proxy.Restore()
	waitStatus(t, dir, func(s adminapi.StatusReport) bool {
		c := s.Cluster
		return c.Member && len(c.Partitions) == clusterPartitions
	})
	if code, err := post(t, addr, "id-1", "conv-1", "hello"); err != nil || code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, err)
	}
	if !testwait.Until(testwait.Timeout, func() bool { return repliesTo(recv, "conv-1") == 1 }) {
		t.Fatal("no reply once NATS answered")
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
