// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
// them all as members and every partition held. Each option edits the
// configuration of node i (nodeURL: its NATS URL instead).
func startClusterNodes(t *testing.T, natsURL, replyURL, extra string, ids []string, opts ...func(i int, c *testConfig)) []*clusterTestNode {
	t.Helper()
	var nodes []*clusterTestNode
	for i, id := range ids {
		n := &clusterTestNode{id: id, dir: t.TempDir(), addr: freePort(t)}
		c := testConfig{Dir: n.dir, HTTP: n.addr, ReplyURL: replyURL, Top: clusterTop(natsURL, id), Extra: extra}
		for _, o := range opts {
			o(i, &c)
		}
		cfg := writeConfig(t, c)
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

// nodeURL makes node i reach NATS at urls[i].
func nodeURL(ids, urls []string) func(int, *testConfig) {
	return func(i int, c *testConfig) { c.Top = clusterTop(urls[i], ids[i]) }
}

// clusterTop is the store and cluster sections of node id on NATS at url.
func clusterTop(url, id string) string {
	return fmt.Sprintf(`store:
  backend: nats
  nats:
    urls: [%q]
    replicas: 1
cluster:
  enabled: true
  node_id: %s
  partitions: %d
  lease_ttl: 5s
`, url, id, clusterPartitions)
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
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, "", ids)

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

var (
	chat = telegramtest.Chat{ID: 555, Type: "private"}
	ann  = telegramtest.User{ID: 555, FirstName: "Ann"}
)

// telegramPlatform starts a Telegram fake and returns it with the
// platform's configuration (under platforms:).
func telegramPlatform(t *testing.T) (*telegramtest.Server, string) {
	fake := telegramtest.New(t, "")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(fake.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return fake, fmt.Sprintf(`  telegram:
    allow_all: true
    token: {file: %s}
    api_url: %s
    poll_timeout: 1s
    request_timeout: 2s
`, token, fake.URL)
}

// telegramHolder waits until n sees a holder of the telegram lease, and
// holds it itself exactly when it sees itself as the holder, and returns
// the holder.
func telegramHolder(t *testing.T, n *clusterTestNode) string {
	t.Helper()
	return platformHolder(t, n, "telegram")
}

// holderAndStandby waits until both nodes agree on the holder of the
// platform instance name, and returns the holder and the other node.
func holderAndStandby(t *testing.T, nodes []*clusterTestNode, name string) (held, standby *clusterTestNode) {
	t.Helper()
	first := platformHolder(t, nodes[0], name)
	if h := platformHolder(t, nodes[1], name); h != first {
		t.Fatalf("%s sees %q holding %s, %s %q", nodes[0].id, first, name, nodes[1].id, h)
	}
	held, standby = splitPair(nodes, first)
	return held, standby
}

// splitPair returns, of two nodes, the one named id and the other.
func splitPair(nodes []*clusterTestNode, id string) (named, other *clusterTestNode) {
	if nodes[0].id == id {
		return nodes[0], nodes[1]
	}
	return nodes[1], nodes[0]
}

// platformHolder is telegramHolder for the platform instance name.
func platformHolder(t *testing.T, n *clusterTestNode, name string) string {
	t.Helper()
	var h string
	waitStatus(t, n.dir, func(s adminapi.StatusReport) bool {
		h = s.Cluster.PlatformHolders[name]
		return h != "" && slices.Contains(s.Cluster.Platforms, name) == (h == n.id)
	})
	return h
}

// telegramAnswers counts the messages the bot sent that contain text.
func telegramAnswers(fake *telegramtest.Server, text string) int {
	n := 0
	for _, m := range fake.Sent() {
		if strings.Contains(m.Text, text) {
			n++
		}
	}
	return n
}

// noConflict fails t if a node saw a 409 Conflict: two pollers at once.
func noConflict(t *testing.T, nodes []*clusterTestNode) {
	t.Helper()
	for _, n := range nodes {
		if strings.Contains(n.p.output(), "409 Conflict") {
			t.Errorf("node %s saw a 409 Conflict: two pollers at once", n.id)
		}
	}
}

// TestClusterTelegramLease: two nodes run the same Telegram bot. Exactly
// one polls it (no 409 Conflict anywhere) and the other stands by; a
// message is answered once. When the holder stops, it releases the lease
// and the other node takes the bot over (the time is logged) and answers
// the next message.
func TestClusterTelegramLease(t *testing.T) {
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	fake, extra := telegramPlatform(t)
	ids := []string{"node-a", "node-b"}
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, extra, ids)

	held, standby := holderAndStandby(t, nodes, "telegram")
	// The standby node's telegram stays in standby: its STATUS= part.
	waitStatus(t, standby.dir, func(s adminapi.StatusReport) bool {
		for _, p := range s.Platforms {
			if p.Name == "telegram" {
				return p.Phase == "standby"
			}
		}
		return false
	})

	answered := func(text string) int { return telegramAnswers(fake, text) }
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
	noConflict(t, nodes)
}

// TestClusterIntakeFailureHandsOver: the bot's preferred holder cannot run
// it: its token is rejected (401 at getMe). It declines the platform, and
// the other node takes the bot over at once instead of the bot staying
// deaf while the failed node holds its lease; that node answers. The
// declining node's status says what it declined and why, and the bot is
// not counted as unheld.
func TestClusterIntakeFailureHandsOver(t *testing.T) {
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	fake, extra := telegramPlatform(t)
	ids := []string{"node-a", "node-b"}
	bad := cluster.OwnerOf("telegram", ids)
	badToken := filepath.Join(t.TempDir(), "bad-token")
	if err := os.WriteFile(badToken, []byte("123:rejected"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := regexp.MustCompile(`token: \{file: [^}]+\}`).ReplaceAllString(extra, "token: {file: "+badToken+"}")
	began := time.Now()
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, extra, ids, func(i int, c *testConfig) {
		if ids[i] == bad {
			c.Extra = wrong
		}
	})
	failed, good := splitPair(nodes, bad)
	st := waitStatus(t, failed.dir, func(s adminapi.StatusReport) bool {
		return len(s.Cluster.Declined) == 1 && s.Cluster.PlatformHolders["telegram"] == good.id
	})
	if d := st.Cluster.Declined[0]; d.Platform != "telegram" || !strings.Contains(d.Reason, "Unauthorized") || time.Until(d.Until) <= 0 {
		t.Fatalf("declined: %+v", d)
	}
	if slices.Contains(st.Cluster.UnheldPlatforms, "telegram") || !strings.Contains(st.StatusLine, "declined telegram until") {
		t.Fatalf("unheld %v; STATUS=%q", st.Cluster.UnheldPlatforms, st.StatusLine)
	}
	platformHolder(t, good, "telegram")
	t.Logf("the bot moved from %s (token rejected) to %s %v after the nodes started", failed.id, good.id, time.Since(began).Round(time.Millisecond))

	// A conversation whose partition the good node owns: the failed node
	// cannot send with its token either.
	id := int64(555)
	for ; ; id++ {
		in := message.Inbound{Platform: "telegram", ChatType: message.ChatDirect, ChatID: strconv.FormatInt(id, 10)}
		if cluster.Owner(cluster.PartitionOf(in.SessionKey(true), clusterPartitions), ids) == good.id {
			break
		}
	}
	fake.PushText(telegramtest.Chat{ID: id, Type: "private"}, telegramtest.User{ID: id, FirstName: "Ann"}, "after the handover")
	fake.Wait(t, testwait.Timeout, "the answer", func() bool { return telegramAnswers(fake, "after the handover") >= 1 })
	for _, n := range nodes {
		n.stop(t)
	}
	if n := telegramAnswers(fake, "after the handover"); n != 1 {
		t.Errorf("answered %d times, want 1", n)
	}
	if out := failed.p.output(); !strings.Contains(out, "platform declined: handing its lease over") {
		t.Errorf("%s logged no handover:\n%s", failed.id, out)
	}
	noConflict(t, nodes)
}

// TestClusterNATSPartition: the node holding the Telegram lease is cut
// from NATS (a proxy that blackholes). It stops polling before its leases
// can expire, the other node takes the bot and every partition over and
// answers; nobody ever sees two pollers. Once the cut node reaches NATS
// again it rejoins and, as the bot's preferred holder, takes it back.
func TestClusterNATSPartition(t *testing.T) {
	srv := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	recv := webhooktest.NewReceiver(t)
	fake, extra := telegramPlatform(t)
	ids := []string{"node-a", "node-b"}
	// The bot's preferred holder reaches NATS through the proxy.
	cut := cluster.OwnerOf("telegram", ids)
	urls := []string{srv.ClientURL(), srv.ClientURL()}
	urls[slices.Index(ids, cut)] = proxy.URL()
	nodes := startClusterNodes(t, "", recv.URL, extra, ids, nodeURL(ids, urls))
	held, other := nodes[0], nodes[1]
	if held.id != cut {
		held, other = other, held
	}
	for _, n := range nodes {
		if h := telegramHolder(t, n); h != cut {
			t.Fatalf("node %s sees %s holding telegram, want the preferred %s", n.id, h, cut)
		}
	}

	begin := time.Now()
	proxy.Cut()
	waitStatus(t, other.dir, func(s adminapi.StatusReport) bool {
		c := s.Cluster
		return len(c.Members) == 1 && len(c.Partitions) == clusterPartitions && slices.Contains(c.Platforms, "telegram")
	})
	t.Logf("node %s holds the bot and every partition %v after the cut (lease TTL 5s)", other.id, time.Since(begin).Round(time.Millisecond))
	// The cut node fenced itself: it stopped polling and counted itself
	// out. (Its admin API is slow to answer meanwhile: the store's calls
	// wait for their timeouts on a connection that looks alive.)
	held.p.waitLog(map[string]string{"msg": "cluster: platform lease ended: not receiving", "platform": "telegram"}, testwait.Timeout)
	held.p.waitLog(map[string]string{"msg": "cluster: membership lost"}, testwait.Timeout)
	fake.PushText(chat, ann, "during the cut")
	fake.Wait(t, testwait.Timeout, "the answer during the cut", func() bool { return telegramAnswers(fake, "during the cut") >= 1 })

	proxy.Restore()
	for _, n := range nodes {
		waitStatus(t, n.dir, func(s adminapi.StatusReport) bool {
			c := s.Cluster
			return c.Member && len(c.Members) == 2 && len(c.UnheldPartitions) == 0 && c.PlatformHolders["telegram"] == cut
		})
	}
	fake.PushText(chat, ann, "after the cut")
	fake.Wait(t, testwait.Timeout, "the answer after the cut", func() bool { return telegramAnswers(fake, "after the cut") >= 1 })
	for _, n := range nodes {
		n.stop(t)
	}
	for _, text := range []string{"during the cut", "after the cut"} {
		if n := telegramAnswers(fake, text); n != 1 {
			t.Errorf("%q answered %d times, want 1", text, n)
		}
	}
	noConflict(t, nodes)
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
	p := start(t, writeConfig(t, testConfig{Dir: dir, HTTP: addr, ReplyURL: recv.URL, Top: clusterTop(proxy.URL(), "solo")}), startOpts{})
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

// TestClusterRollingRestart: three nodes take webhook messages for nine
// conversations, spread over the nodes, while each node in turn is
// stopped (SIGTERM) and started again. Senders retry on another node
// until one acknowledges. Every message gets exactly one reply as the
// receiver shows it: the partitions a stopping node releases are taken
// over with their pending work, nothing is lost or answered twice.
func TestClusterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three nodes under load")
	}
	const messages = 90
	srv := natstest.StartServer(t)
	recv := webhooktest.NewReceiver(t)
	ids := []string{"node-a", "node-b", "node-c"}
	// Each turn takes a moment (the echo agent waits between words), so
	// that turns are in flight when a node stops.
	nodes := startClusterNodes(t, srv.ClientURL(), recv.URL, "", ids, func(_ int, c *testConfig) { c.WordDelay = "30ms" })
	cfgs := make([]string, len(nodes))
	for i, n := range nodes {
		cfgs[i] = filepath.Join(n.dir, "herald.yaml")
	}

	var acked atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				for try := i; ; try++ {
					n := nodes[try%len(nodes)]
					code, err := post(t, n.addr, fmt.Sprintf("msg-%03d", i), fmt.Sprintf("conv-%d", i%9), fmt.Sprintf("m %03d", i))
					if err == nil && code == http.StatusAccepted {
						acked.Add(1)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	go func() {
		for i := 0; i < messages; i++ {
			next <- i
			time.Sleep(5 * time.Millisecond)
		}
		close(next)
	}()

	for i, n := range nodes {
		want := int64((i + 1) * messages / (len(nodes) + 1))
		testwait.Until(testwait.Timeout, func() bool { return acked.Load() >= want })
		n.stop(t)
		n.p = start(t, cfgs[i], startOpts{})
		n.p.ready()
		for _, o := range nodes {
			waitStatus(t, o.dir, func(s adminapi.StatusReport) bool {
				c := s.Cluster
				return c != nil && c.Member && len(c.Members) == len(nodes) && len(c.UnheldPartitions) == 0
			})
		}
	}
	wg.Wait()
	if !testwait.Until(60*time.Second, func() bool { return len(recv.Delivered()) >= messages }) {
		t.Fatalf("%d replies of %d messages", len(recv.Delivered()), messages)
	}
	for _, n := range nodes {
		n.stop(t)
	}
	got := map[string]int{}
	for _, r := range recv.Delivered() {
		got[r.Text]++
	}
	for i := 0; i < messages; i++ {
		if want := fmt.Sprintf("echo: m %03d", i); got[want] != 1 {
			t.Errorf("message %d: %d replies shown, want exactly 1", i, got[want])
		}
	}
	t.Logf("%d replies shown; %d duplicate deliveries absorbed by the idempotency key", len(recv.Delivered()), recv.Duplicates())
}

// TestClusterStartError: a node whose coordinator cannot start (the
// leases bucket was made with another lease TTL) stays up, not joined,
// and its STATUS= says why.
func TestClusterStartError(t *testing.T) {
	srv := natstest.StartServer(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Timeout)
	defer cancel()
	if _, err := cluster.LeaseBucket(ctx, js, "herald_leases", 7*time.Second, 1); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := start(t, writeConfig(t, testConfig{Dir: dir, Top: clusterTop(srv.ClientURL(), "solo")}), startOpts{})
	p.ready()
	waitStatus(t, dir, func(s adminapi.StatusReport) bool {
		return s.Cluster != nil && !s.Cluster.Member &&
			strings.HasPrefix(s.StatusLine, "degraded: cluster: not joined yet (cluster: bucket herald_leases exists with ttl 7s, not 5s")
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
