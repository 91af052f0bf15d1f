// SPDX-License-Identifier: Apache-2.0

//go:build cluster

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// Cluster mode under real systemd: three herald nodes, each its own unit
// (herald-a, herald-b, herald-c: own configuration, state directory, HTTP
// socket, admin socket and node id) in one sandbox, against a real
// three-server JetStream cluster in the test process. Each node reaches
// every NATS server through a proxy of its own on the sandbox's loopback,
// so the test can cut one node off NATS. The fakes (the Telegram Bot API,
// the agent) run in the test process too; each node reaches them through
// a recording HTTP front of its own, which tells which node made which
// call and when. Webhook replies go to one deduplicating receiver.
//
// They run with the build tag "cluster" (make cluster-test, which CI
// runs), without the race detector: herald runs as its own binary as in
// every e2e test, so the detector would only instrument the harness and
// the in-process NATS servers, which it slows several times over; the
// nodes then see a NATS far slower than any deployment's.

// clusterTTL is cluster.lease_ttl of every node: the minimum, to keep the
// tests short.
const clusterTTL = 5 * time.Second

// clusterWait bounds each wait for something to happen: a start, a
// failover, every reply of a load.
const clusterWait = 3 * time.Minute

// clusterNodes are the node ids; node i listens for webhooks on port
// clusterPort+i of the sandbox's loopback.
var clusterNodes = []string{"a", "b", "c"}

const clusterPort = 8090

// clusterLease is the lease timing every node uses (cluster.lease_ttl;
// the other fields keep pkg/cluster's defaults).
var clusterLease = cluster.LeaseConfig{TTL: clusterTTL}

// fenceStart is how long after its last successful renewal a node that
// can no longer renew starts stopping its work; stoppedBy is when the
// lease guarantees that work has stopped (TTL − Drift, Drift being the
// default TTL/10): before the key can expire on the server.
var (
	fenceStart = clusterTTL - clusterLease.Margin()
	stoppedBy  = clusterTTL - clusterTTL/10
)

type clusterEnv struct {
	*env
	servers []*server.Server
	tg      *telegramtest.Server
	agent   *agenttest.Server
	rcv     *webhooktest.Receiver
	rec     *recorder
	nodes   []*clusterNode
	post    *http.Client
}

type clusterNode struct {
	name    string // node id
	unit    string // herald-<name>.service
	port    int
	proxies []*natstest.Proxy // one per NATS server
}

// cut blackholes the node's way to every NATS server.
func (n *clusterNode) cut() {
	for _, p := range n.proxies {
		p.Cut()
	}
}

func (n *clusterNode) restore() {
	for _, p := range n.proxies {
		p.Restore()
	}
}

// newClusterEnv boots the sandbox, the NATS cluster, the fakes and the
// fronts, and installs the three units. It starts nothing.
func newClusterEnv(t *testing.T) *clusterEnv {
	e := newEnv(t, envOpts{})
	// The default context of env is too short for these tests.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	c := &clusterEnv{env: e, rec: newRecorder()}
	c.servers = natstest.StartCluster(t, 3)
	c.tg = telegramtest.New(t, "")
	c.agent = agenttest.New(t)
	c.rcv = webhooktest.NewReceiver(t, webhooktest.WithListen(e.s.Listen))
	c.post = e.s.HTTPClient()
	c.post.Timeout = 60 * time.Second
	e.credential("telegram-token", c.tg.Token)

	service := c.unitFile(t, "herald.service")
	httpSocket := c.unitFile(t, "herald.socket")
	adminSocket := c.unitFile(t, "herald-admin.socket")
	for i, name := range clusterNodes {
		n := &clusterNode{name: name, unit: "herald-" + name + ".service", port: clusterPort + i}
		var urls []string
		for _, s := range c.servers {
			p := natstest.ServeProxy(t, e.loopback(), s.Addr().String())
			n.proxies = append(n.proxies, p)
			urls = append(urls, `"`+p.URL()+`"`)
		}
		tgURL := c.rec.front(t, e.loopback(), name, "telegram", c.tg.URL)
		agentURL := c.rec.front(t, e.loopback(), name, "agent", c.agent.URL)
		r := strings.NewReplacer(
			"herald-admin.socket", "herald-"+name+"-admin.socket",
			"herald.socket", "herald-"+name+".socket",
			"herald.service", n.unit,
			"/etc/herald/herald.yaml", "/etc/herald/"+name+".yaml",
			"/run/herald/admin.sock", "/run/herald-"+name+"/admin.sock",
			"StateDirectory=herald\n", "StateDirectory=herald-"+name+"\n",
			"RuntimeDirectory=herald\n", "RuntimeDirectory=herald-"+name+"\n",
			"WorkingDirectory=/var/lib/herald\n", "WorkingDirectory=/var/lib/herald-"+name+"\n",
			"127.0.0.1:8089", fmt.Sprintf("127.0.0.1:%d", n.port),
		)
		e.write("/etc/systemd/system/"+n.unit, r.Replace(service))
		e.write("/etc/systemd/system/herald-"+name+".socket", r.Replace(httpSocket))
		e.write("/etc/systemd/system/herald-"+name+"-admin.socket", r.Replace(adminSocket))
		e.write("/etc/herald/"+name+".yaml", fmt.Sprintf(`log:
  level: info
shutdown:
  drain_timeout: 5s
  adapter_timeout: 2s
delivery:
  initial_backoff: 100ms
  max_backoff: 1s
  max_attempts: 1000
agent:
  kind: openai
  url: %s
store:
  backend: nats
  nats:
    urls: [%s]
    replicas: 3
cluster:
  enabled: true
  node_id: %s
  partitions: 16
  lease_ttl: %s
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: %s
  telegram:
    allow_all: true
    token: {credential: telegram-token}
    api_url: %s
    poll_timeout: 2s
`, agentURL, strings.Join(urls, ", "), name, clusterTTL, c.rcv.URL, tgURL))
		c.nodes = append(c.nodes, n)
	}
	e.systemctl("daemon-reload")
	t.Cleanup(func() {
		if t.Failed() {
			c.dump()
		}
	})
	return c
}

// dump logs, for a failed test, the Telegram calls of every node and each
// unit's state.
func (c *clusterEnv) dump() {
	var lines []string
	running := map[string]bool{}
	for _, cl := range c.rec.calls() {
		if !cl.ended {
			running[cl.key] = true
		}
	}
	for _, cl := range c.rec.calls() {
		if cl.kind != "telegram" && !running[cl.key] {
			continue
		}
		end := "running"
		if cl.ended {
			end = fmt.Sprintf("%s %d", cl.end.Format("15:04:05.000"), cl.status)
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s → %s", cl.node, cl.kind, cl.key, cl.start.Format("15:04:05.000"), end))
	}
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	c.t.Logf("Telegram calls (last %d):\n%s", len(lines), strings.Join(lines, "\n"))
	for _, n := range c.nodes {
		p, err := c.s.Show(context.Background(), n.unit, "ActiveState", "SubState", "MainPID", "NRestarts", "StatusText")
		c.t.Logf("%s: %v %v", n.unit, p, err)
		out, _, _, _ := c.s.Run(context.Background(), "journalctl", "-u", n.unit, "-p", "warning", "-n", "30", "--no-pager", "-o", "short-precise")
		c.t.Logf("%s warnings and errors (last 30):\n%s", n.unit, out)
	}
}

// unitFile reads one of the project's unit files from the shared build.
func (c *clusterEnv) unitFile(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join(buildDir, "units", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startAll starts the three nodes, waits until each is active and has
// joined the cluster, and until one node polls Telegram.
func (c *clusterEnv) startAll() {
	c.t.Helper()
	for _, n := range c.nodes {
		c.systemctl("start", "herald-"+n.name+".socket", "herald-"+n.name+"-admin.socket", n.unit)
	}
	for _, n := range c.nodes {
		c.waitProps(n.unit, map[string]string{"ActiveState": "active", "SubState": "running"}, clusterWait)
		c.waitJoined(n, 0)
	}
	c.waitPoller(time.Time{}, "")
}

// invocation is the unit's current InvocationID.
func (c *clusterEnv) invocation(n *clusterNode) string {
	return c.show(n.unit, "InvocationID")["InvocationID"]
}

// joined is how many times the node's current run has joined the
// cluster.
func (c *clusterEnv) joined(n *clusterNode) int {
	return len(c.journal("", map[string]string{"MESSAGE": "cluster: joined", "INVOCATION_ID": c.invocation(n)}))
}

// waitJoined waits until the node's current run has joined the cluster
// more than before times.
func (c *clusterEnv) waitJoined(n *clusterNode, before int) {
	c.t.Helper()
	testwait.Within(c.t, clusterWait, n.unit+" to join the cluster", func() bool { return c.joined(n) > before })
}

// waitPoller waits for a getUpdates that started after since and
// returns its node and start: from a node other than victim, or from a new
// Telegram intake on victim (its getMe after since: a node restarted by
// systemd may get the platform back).
func (c *clusterEnv) waitPoller(since time.Time, victim string) (string, time.Time) {
	c.t.Helper()
	var node string
	var at time.Time
	c.rec.wait(c.t, clusterWait, "a Telegram poller", func(calls []call) bool {
		fresh := map[string]bool{}
		for _, cl := range calls {
			if cl.kind != "telegram" || !cl.start.After(since) {
				continue
			}
			switch {
			case cl.key == "getMe":
				fresh[cl.node] = true
			case cl.key == "getUpdates" && (cl.node != victim || fresh[cl.node]):
				node, at = cl.node, cl.start
				return true
			}
		}
		return false
	})
	return node, at
}

// telegramHolder waits until exactly one node runs the Telegram platform
// by its journal (its last "cluster: started" or "cluster: stopped" of
// the lease platform/telegram is a start) and has polled since, and
// returns it: the holder at this moment, not one handing the platform
// over after a membership change.
func (c *clusterEnv) telegramHolder() *clusterNode {
	c.t.Helper()
	var holder *clusterNode
	testwait.Within(c.t, clusterWait, "one Telegram lease holder", func() bool {
		holder = nil
		var since time.Time
		for _, n := range c.nodes {
			var last map[string]any
			for _, e := range c.journal("", map[string]string{"INVOCATION_ID": c.invocation(n), "LEASE": "platform/telegram"}) {
				if m, _ := e["MESSAGE"].(string); m == "cluster: started" || m == "cluster: stopped" {
					last = e
				}
			}
			if last == nil || last["MESSAGE"] != "cluster: started" {
				continue
			}
			if holder != nil {
				return false
			}
			holder = n
			since, _ = journalAt(last)
		}
		if holder == nil {
			return false
		}
		for _, cl := range c.rec.calls() {
			if cl.node == holder.name && cl.kind == "telegram" && cl.key == "getUpdates" && cl.start.After(since) {
				return true
			}
		}
		return false
	})
	return holder
}

// postWebhook posts one webhook message to node i.
func (c *clusterEnv) postWebhook(i int, id, conv, text string) (int, error) {
	body := fmt.Sprintf(`{"conversation_id":%q,"user_id":"u-%s","text":%q}`, conv, conv, text)
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/hooks/webhook", clusterPort+i), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	return fakeserver.Do(c.post, req)
}

// clusterLoad is a stream of messages: webhook messages posted to the nodes and
// Telegram updates pushed to the fake.
type clusterLoad struct {
	c    *clusterEnv
	wg   sync.WaitGroup
	done chan struct{}
	stop chan struct{} // closed by end: send no more
	once sync.Once

	mu       sync.Mutex
	webhook  []string // texts of the webhook messages accepted (202)
	telegram []string // texts of the Telegram updates pushed
	attempts int      // webhook POSTs made
	failed   []string // webhook POSTs not answered 202: what happened
}

// loadSpec says what a load sends: webhook messages, one every `every`,
// to the node node(i) returns, retried (same webhook-id) until accepted;
// and a Telegram update after every tgEvery-th webhook message.
type loadSpec struct {
	prefix  string
	webhook int
	every   time.Duration
	node    func(i int) int
	tgEvery int // 0: no Telegram updates
}

// conversations the webhook messages and Telegram chats are spread over.
const (
	loadConversations = 24
	loadChats         = 8
)

// startLoad sends spec in the background; wait ends it.
func (c *clusterEnv) startLoad(spec loadSpec) *clusterLoad {
	l := &clusterLoad{c: c, done: make(chan struct{}), stop: make(chan struct{})}
	sem := make(chan struct{}, 16)
	go func() {
		defer close(l.done)
		tick := time.NewTicker(spec.every)
		defer tick.Stop()
		for i := 0; i < spec.webhook; i++ {
			if i > 0 {
				select {
				case <-tick.C:
				case <-l.stop:
					return
				case <-c.ctx.Done():
					return
				}
			}
			if spec.tgEvery > 0 && i%spec.tgEvery == 0 {
				text := fmt.Sprintf("%s-tg-%d", spec.prefix, i/spec.tgEvery)
				chat := int64(7000 + (i/spec.tgEvery)%loadChats)
				c.tg.PushText(telegramtest.Chat{ID: chat, Type: "private"}, telegramtest.User{ID: chat, FirstName: "U"}, text)
				l.mu.Lock()
				l.telegram = append(l.telegram, text)
				l.mu.Unlock()
			}
			text := fmt.Sprintf("%s-wh-%d", spec.prefix, i)
			conv := fmt.Sprintf("%s-c%d", spec.prefix, i%loadConversations)
			node := spec.node(i)
			sem <- struct{}{}
			l.wg.Add(1)
			go func() {
				defer func() { <-sem; l.wg.Done() }()
				l.send(node, text, conv)
			}()
		}
	}()
	return l
}

// send posts one message until it is accepted or the test's context ends.
func (l *clusterLoad) send(node int, text, conv string) {
	for {
		code, err := l.c.postWebhook(node, text, conv, text)
		l.mu.Lock()
		l.attempts++
		if err == nil && code == http.StatusAccepted {
			l.webhook = append(l.webhook, text)
			l.mu.Unlock()
			return
		}
		l.failed = append(l.failed, fmt.Sprintf("%s to %s: %d %v", text, clusterNodes[node], code, err))
		l.mu.Unlock()
		select {
		case <-time.After(500 * time.Millisecond):
		case <-l.c.ctx.Done():
			return
		}
	}
}

// end stops sending new messages.
func (l *clusterLoad) end() { l.once.Do(func() { close(l.stop) }) }

// wait waits until every message of the load was sent and accepted.
func (l *clusterLoad) wait(t *testing.T) {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(clusterWait):
		t.Fatal("load: not sent within the deadline")
	}
	ch := make(chan struct{})
	go func() { l.wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(clusterWait):
		t.Fatal("load: webhook messages not accepted within the deadline")
	}
}

func (l *clusterLoad) texts() (webhook, tg []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.webhook...), append([]string(nil), l.telegram...)
}

// answers counts the replies each message got. webhook: deliveries the
// receiver made (one per Idempotency-Key) by the text answered; tg: plain
// and marked (resent after an interrupted send) Telegram replies.
type answers struct {
	webhook  map[string]int
	tgPlain  map[string]int
	tgMarked map[string]int
}

func (c *clusterEnv) answers() answers {
	a := answers{webhook: map[string]int{}, tgPlain: map[string]int{}, tgMarked: map[string]int{}}
	for _, r := range c.rcv.Delivered() {
		a.webhook[strings.TrimPrefix(r.Text, "agent: ")]++
	}
	for _, m := range c.tg.Sent() {
		text := strings.TrimSpace(m.Text)
		if rest, ok := strings.CutPrefix(text, adapter.RecoveredMark); ok {
			a.tgMarked[strings.TrimPrefix(strings.TrimSpace(rest), "agent: ")]++
			continue
		}
		a.tgPlain[strings.TrimPrefix(text, "agent: ")]++
	}
	return a
}

// waitAnswered waits until every message of the loads has a reply.
func (c *clusterEnv) waitAnswered(loads ...*clusterLoad) answers {
	c.t.Helper()
	var a answers
	var missing []string
	testwait.Within(c.t, clusterWait, "every message answered", func() bool {
		a = c.answers()
		missing = missing[:0]
		for _, l := range loads {
			wh, tg := l.texts()
			for _, x := range wh {
				if a.webhook[x] == 0 {
					missing = append(missing, x)
				}
			}
			for _, x := range tg {
				if a.tgPlain[x]+a.tgMarked[x] == 0 {
					missing = append(missing, x)
				}
			}
		}
		return len(missing) == 0
	})
	return a
}

// checkOnce fails the test for a message answered more than once (a
// marked Telegram resend besides at most one plain reply is the
// documented interrupted-send window, not a failure) and returns the
// number of Telegram messages in that window.
func (c *clusterEnv) checkOnce(a answers, loads ...*clusterLoad) (window int) {
	c.t.Helper()
	for _, l := range loads {
		wh, tg := l.texts()
		for _, x := range wh {
			if a.webhook[x] != 1 {
				c.t.Errorf("webhook message %s: %d replies, want 1", x, a.webhook[x])
			}
		}
		for _, x := range tg {
			plain, marked := a.tgPlain[x], a.tgMarked[x]
			switch {
			case plain == 1 && marked == 0:
			case plain <= 1 && marked == 1:
				window++
			default:
				c.t.Errorf("telegram message %s: %d replies and %d marked resends: %s", x, plain, marked, c.sends(x))
			}
		}
	}
	return window
}

// sends describes the Telegram sends whose text answers message x and
// the agent turns of x: which node, when.
func (c *clusterEnv) sends(x string) string {
	var out []string
	for _, cl := range c.rec.calls() {
		if cl.kind == "telegram" && cl.key == "sendMessage" && strings.HasSuffix(cl.text, "agent: "+x) ||
			cl.kind == "agent" && cl.key == x {
			out = append(out, fmt.Sprintf("%s %s %s→%s %d", cl.node, cl.kind, cl.start.Format("15:04:05.000"), cl.end.Format("15:04:05.000"), cl.status))
		}
	}
	return strings.Join(out, "; ")
}

// turns counts the agent requests per message text and the nodes that
// made them.
func (c *clusterEnv) turns() map[string][]call {
	out := map[string][]call{}
	for _, cl := range c.rec.calls() {
		if cl.kind == "agent" {
			out[cl.key] = append(out[cl.key], cl)
		}
	}
	return out
}

// checkNoOverlap fails the test for a message whose turns ran on two
// nodes at once, and returns how many messages ran more than once.
func (c *clusterEnv) checkNoOverlap() (rerun int) {
	c.t.Helper()
	for text, cls := range c.turns() {
		if len(cls) < 2 {
			continue
		}
		rerun++
		sort.Slice(cls, func(i, j int) bool { return cls[i].start.Before(cls[j].start) })
		for i := 1; i < len(cls); i++ {
			prev := cls[i-1]
			if !prev.ended || cls[i].start.Before(prev.end) {
				c.t.Errorf("message %s: turn on node %s started at %s while the turn on node %s (%s) was running",
					text, cls[i].node, cls[i].start.Format("15:04:05.000"), prev.node, prev.start.Format("15:04:05.000"))
			}
		}
	}
	return rerun
}

// checkPollers fails the test if the fake ever saw two pollers at once.
func (c *clusterEnv) checkPollers() {
	c.t.Helper()
	if got := c.tg.MaxPollers(); got != 1 {
		c.t.Errorf("Telegram fake: max_pollers %d, want 1", got)
	}
}

// restarted waits until systemd has started the node's unit again after
// a SIGKILL (a new MainPID, active).
func (c *clusterEnv) restarted(n *clusterNode, before map[string]string) {
	c.t.Helper()
	var p map[string]string
	if !testwait.Until(clusterWait, func() bool {
		p = c.show(n.unit, "MainPID", "ActiveState", "SubState", "NRestarts")
		return p["MainPID"] != before["MainPID"] && p["MainPID"] != "0" && p["ActiveState"] == "active" && p["SubState"] == "running" && p["NRestarts"] != before["NRestarts"]
	}) {
		c.t.Fatalf("%s was not restarted after the SIGKILL: %v", n.unit, p)
	}
}

// TestClusterNodeLoss: 600 messages (webhook messages spread over the
// three nodes, Telegram updates) while the node holding the Telegram lease
// is SIGKILLed twice, systemd restarting it each time. The Telegram fake
// never sees two pollers; Telegram is polled again within lease_ttl + 2 s
// of each SIGKILL (by another node, or by the killed one once systemd
// restarted it and it joined again: the platform's preferred owner stays
// the same while the membership does); every webhook message gets one
// reply and every Telegram
// message one, except the documented window of a SIGKILL during a send,
// which the test counts.
func TestClusterNodeLoss(t *testing.T) {
	c := newClusterEnv(t)
	c.startAll()
	// 540 webhook messages, one every 60 ms, and a Telegram update every
	// 9th: 60; 600 messages in about 33 s.
	l := c.startLoad(loadSpec{prefix: "loss", webhook: 540, every: 60 * time.Millisecond, node: func(i int) int { return i % 3 }, tgEvery: 9})
	var failovers []time.Duration
	for k := 0; k < 2; k++ {
		// Let the load run on a settled cluster first.
		testwait.Within(t, clusterWait, "some replies", func() bool { return len(c.rcv.Delivered()) >= 60*(k+1) })
		victim := c.telegramHolder()
		before := c.show(victim.unit, "MainPID", "NRestarts")
		killed := time.Now()
		c.systemctl("kill", "--signal=KILL", victim.unit)
		node, at := c.waitPoller(killed, victim.name)
		took := at.Sub(killed)
		failovers = append(failovers, took)
		if node == victim.name {
			node += " (restarted by systemd)"
		}
		t.Logf("SIGKILL %d of node %s (Telegram lease holder): node %s polled Telegram %s later", k+1, victim.name, node, took.Round(time.Millisecond))
		if took > clusterTTL+2*time.Second {
			t.Errorf("Telegram failover took %s, want ≤ lease_ttl %s + 2s", took.Round(time.Millisecond), clusterTTL)
		}
		c.restarted(victim, before)
		c.waitJoined(victim, 0)
	}
	l.wait(t)
	a := c.waitAnswered(l)
	window := c.checkOnce(a, l)
	c.checkPollers()
	rerun := c.checkNoOverlap()
	wh, tg := l.texts()
	t.Logf("messages: %d webhook, %d Telegram; failovers %v; Telegram interrupted-send window: %d messages; turns run again after a SIGKILL: %d; webhook POSTs %d, not accepted at first %d; receiver duplicates %d; Telegram max_pollers %d",
		len(wh), len(tg), failovers, window, rerun, l.attempts, len(l.failed), c.rcv.Duplicates(), c.tg.MaxPollers())
	if len(wh)+len(tg) != 600 {
		t.Errorf("sent %d messages, want 600", len(wh)+len(tg))
	}
}

// TestClusterPartition: the node polling Telegram is cut from every NATS
// server (its proxies blackhole) under load. It stops polling and running
// turns within the fencing bound, another node takes Telegram and its
// partitions, nothing runs on two nodes at once and every message gets one
// reply. Once the proxies forward again the node joins again (its join is
// awaited) and the cluster answers every later message once.
func TestClusterPartition(t *testing.T) {
	c := newClusterEnv(t)
	c.startAll()
	warm := c.startLoad(loadSpec{prefix: "warm", webhook: 60, every: 20 * time.Millisecond, node: func(i int) int { return i % 3 }, tgEvery: 6})
	warm.wait(t)
	c.waitAnswered(warm)

	victim := c.telegramHolder()
	vi := slices.Index(c.nodes, victim)
	others := []int{(vi + 1) % 3, (vi + 2) % 3}
	// The load goes to the other two nodes: the cut node cannot store.
	l := c.startLoad(loadSpec{prefix: "cut", webhook: 200, every: 50 * time.Millisecond, node: func(i int) int { return others[i%2] }, tgEvery: 5})
	testwait.Within(t, clusterWait, "load under way", func() bool { return len(c.rcv.Delivered()) >= 100 })
	cut := time.Now()
	victim.cut()
	node, at := c.waitPoller(cut, victim.name)
	t.Logf("node %s cut from NATS; node %s polled Telegram %s later", victim.name, node, at.Sub(cut).Round(time.Millisecond))
	l.wait(t)
	a := c.waitAnswered(warm, l)

	// The cut node's last poll and last turn ended within the fencing
	// bound, and it started none after.
	var lastEnd, lastPoll time.Time
	for _, cl := range c.rec.calls() {
		if cl.node != victim.name || cl.start.Before(cut) && cl.ended && cl.end.Before(cut) {
			continue
		}
		if !cl.ended {
			t.Errorf("node %s: %s %s still running after the cut", victim.name, cl.kind, cl.key)
			continue
		}
		if cl.end.After(lastEnd) {
			lastEnd = cl.end
		}
		if cl.kind == "telegram" && cl.end.After(lastPoll) {
			lastPoll = cl.end
		}
		if cl.start.After(cut.Add(stoppedBy)) {
			t.Errorf("node %s started %s %s %s after the cut, past the fencing bound %s", victim.name, cl.kind, cl.key, cl.start.Sub(cut).Round(time.Millisecond), stoppedBy)
		}
	}
	stopped := lastEnd.Sub(cut)
	if lastEnd.IsZero() {
		stopped = 0
	}
	t.Logf("node %s: its last call to the fakes (Telegram, agent) ended %s after the cut", victim.name, stopped.Round(time.Millisecond))
	if stopped > stoppedBy {
		t.Errorf("node %s stopped %s after the cut, past the fencing bound %s", victim.name, stopped.Round(time.Millisecond), stoppedBy)
	}
	// What the journals say: the cut node fenced its leases and stopped
	// the work of each (its Telegram intake, its partitions) before
	// another node started it.
	fenced, hs := c.fence(victim, cut)
	var lastStop time.Duration
	var moved []string
	for _, h := range hs {
		lastStop = max(lastStop, h.stopped)
		moved = append(moved, fmt.Sprintf("%s stopped %s, started on %s %s", h.lease, h.stopped.Round(time.Millisecond), h.by, h.started.Round(time.Millisecond)))
		if h.started == 0 {
			t.Errorf("lease %s: stopped on the cut node %s, started by no other node", h.lease, victim.name)
		} else if h.started < h.stopped {
			t.Errorf("lease %s: started on node %s %s after the cut, before the cut node stopped it (%s)", h.lease, h.by, h.started.Round(time.Millisecond), h.stopped.Round(time.Millisecond))
		}
	}
	if fenced == 0 || len(hs) == 0 || !strings.Contains(strings.Join(moved, " "), "platform/telegram") {
		t.Errorf("node %s: fenced %s after the cut, stopped leases %v: want the Telegram platform and its partitions fenced", victim.name, fenced, moved)
	}
	t.Logf("node %s: first lease fenced %s after the cut, the last lease stopped %s after the cut (fencing starts %s after the last renewal, the work is stopped by %s); %d leases moved: %s",
		victim.name, fenced.Round(time.Millisecond), lastStop.Round(time.Millisecond), fenceStart, stoppedBy, len(hs), strings.Join(moved, "; "))
	if !at.After(lastPoll) {
		t.Errorf("node %s polled Telegram at %s, before the cut node's last Telegram call ended at %s", node, at.Format("15:04:05.000"), lastPoll.Format("15:04:05.000"))
	}
	window := c.checkOnce(a, warm, l)
	c.checkPollers()
	rerun := c.checkNoOverlap()

	// Back on NATS, the node joins again and takes its share.
	joins := c.joined(victim)
	victim.restore()
	c.waitJoined(victim, joins)
	after := c.startLoad(loadSpec{prefix: "back", webhook: 60, every: 20 * time.Millisecond, node: func(i int) int { return i % 3 }})
	after.wait(t)
	a = c.waitAnswered(warm, l, after)
	c.checkOnce(a, warm, l, after)
	c.checkPollers()
	c.checkNoOverlap()
	wh, tg := l.texts()
	t.Logf("during the cut: %d webhook, %d Telegram messages; Telegram interrupted-send window %d; turns run again %d; webhook POSTs not accepted at first %d; Telegram max_pollers %d",
		len(wh), len(tg), window, rerun, len(l.failed), c.tg.MaxPollers())
}

// journalAt is when journald received entry e.
func journalAt(e map[string]any) (time.Time, bool) {
	raw, _ := e["__REALTIME_TIMESTAMP"].(string)
	us, err := strconv.ParseInt(raw, 10, 64)
	return time.UnixMicro(us), err == nil
}

// handover is what the journals say of one lease after a cut: when the
// cut node stopped its work, and when and where another node started it.
type handover struct {
	lease            string
	stopped, started time.Duration // after the cut; started 0: not yet
	by               string
}

// fence reads the journals since cut: how long after it the cut node n
// fenced its first lease ("lease lost: ..."), and for each lease it
// stopped (journal "cluster: stopped"), when another node started it
// ("cluster: started").
func (c *clusterEnv) fence(n *clusterNode, cut time.Time) (fenced time.Duration, hs []handover) {
	c.t.Helper()
	byLease := map[string]*handover{}
	for _, e := range c.journal("", map[string]string{"INVOCATION_ID": c.invocation(n)}) {
		at, ok := journalAt(e)
		if !ok || at.Before(cut) {
			continue
		}
		msg, _ := e["MESSAGE"].(string)
		lease, _ := e["LEASE"].(string)
		switch {
		case strings.HasPrefix(msg, "lease lost: ") && fenced == 0:
			fenced = at.Sub(cut)
		case msg == "cluster: stopped" && byLease[lease] == nil:
			byLease[lease] = &handover{lease: lease, stopped: at.Sub(cut)}
		}
	}
	for _, o := range c.nodes {
		if o == n {
			continue
		}
		for _, e := range c.journal("", map[string]string{"INVOCATION_ID": c.invocation(o), "MESSAGE": "cluster: started"}) {
			at, ok := journalAt(e)
			lease, _ := e["LEASE"].(string)
			h := byLease[lease]
			if !ok || h == nil || at.Before(cut) || h.started != 0 && h.started <= at.Sub(cut) {
				continue
			}
			h.started, h.by = at.Sub(cut), o.name
		}
	}
	for _, h := range byLease {
		hs = append(hs, *h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].lease < hs[j].lease })
	return fenced, hs
}

// TestClusterNATSNodeLoss: the NATS server leading the store's stream is
// shut down under load. The herald nodes keep running (no restart) and every message
// is answered once.
func TestClusterNATSNodeLoss(t *testing.T) {
	c := newClusterEnv(t)
	c.startAll()
	pids := map[string]string{}
	for _, n := range c.nodes {
		pids[n.name] = c.show(n.unit, "MainPID")["MainPID"]
	}
	l := c.startLoad(loadSpec{prefix: "nats", webhook: 240, every: 50 * time.Millisecond, node: func(i int) int { return i % 3 }, tgEvery: 6})
	testwait.Within(t, clusterWait, "load under way", func() bool { return len(c.rcv.Delivered()) >= 60 })
	// The leader of the store's stream (KV_herald_store: the default
	// prefix), through which every write goes, is the hard case.
	victim := c.servers[0]
	for _, s := range c.servers {
		if s.JetStreamIsStreamLeader("$G", "KV_herald_store") {
			victim = s
		}
	}
	t.Logf("shutting down NATS server %s (leader of the store's stream: %v, JetStream meta leader: %v)",
		victim.Name(), victim.JetStreamIsStreamLeader("$G", "KV_herald_store"), victim.JetStreamIsLeader())
	victim.Shutdown()
	l.wait(t)
	a := c.waitAnswered(l)
	window := c.checkOnce(a, l)
	c.checkPollers()
	rerun := c.checkNoOverlap()
	for _, n := range c.nodes {
		p := c.show(n.unit, "MainPID", "NRestarts", "ActiveState")
		if p["MainPID"] != pids[n.name] || p["NRestarts"] != "0" || p["ActiveState"] != "active" {
			t.Errorf("%s after the NATS server loss: %v, want the same process (MainPID %s) still active", n.unit, p, pids[n.name])
		}
	}
	wh, tg := l.texts()
	t.Logf("%d webhook, %d Telegram messages; Telegram interrupted-send window %d; turns run again %d; webhook POSTs not accepted at first %d: %v",
		len(wh), len(tg), window, rerun, len(l.failed), l.failed)
}

// TestClusterRollingRestart: under steady webhook load, `systemctl
// restart` each node in turn. No webhook POST fails (the socket holds them
// while a node restarts) and every message is answered once.
func TestClusterRollingRestart(t *testing.T) {
	c := newClusterEnv(t)
	c.startAll()
	l := c.startLoad(loadSpec{prefix: "roll", webhook: 100000, every: 100 * time.Millisecond, node: func(i int) int { return i % 3 }})
	t.Cleanup(l.end)
	for k, n := range c.nodes {
		testwait.Within(t, clusterWait, "replies before the restart", func() bool { return len(c.rcv.Delivered()) >= 30*(k+1) })
		pid := c.show(n.unit, "MainPID")["MainPID"]
		took, code, out := c.timed("restart", n.unit)
		if code != 0 {
			t.Fatalf("systemctl restart %s: exit %d: %s", n.unit, code, out)
		}
		c.waitProps(n.unit, map[string]string{"ActiveState": "active", "SubState": "running"}, clusterWait)
		if c.show(n.unit, "MainPID")["MainPID"] == pid {
			t.Fatalf("%s was not restarted", n.unit)
		}
		c.waitJoined(n, 0)
		t.Logf("%s restarted in %s", n.unit, took.Round(time.Millisecond))
	}
	// Some more messages on the restarted cluster, then stop.
	n := len(c.rcv.Delivered())
	testwait.Within(t, clusterWait, "replies after the restarts", func() bool { return len(c.rcv.Delivered()) >= n+30 })
	l.end()
	l.wait(t)
	a := c.waitAnswered(l)
	c.checkOnce(a, l)
	rerun := c.checkNoOverlap()
	wh, _ := l.texts()
	if len(l.failed) != 0 {
		t.Errorf("%d of %d webhook POSTs not accepted: %v", len(l.failed), l.attempts, l.failed)
	}
	t.Logf("%d webhook messages over three restarts; POSTs %d, failed %d; turns run again %d; receiver duplicates %d",
		len(wh), l.attempts, len(l.failed), rerun, c.rcv.Duplicates())
}

// recorder records the calls the nodes make through their fronts.
type recorder struct {
	mu      sync.Mutex
	list    []*call
	changes fakeserver.Changes // notified on every call begun or ended
}

// call is one HTTP request a node made to a fake: kind "telegram" (key:
// the Bot API method) or "agent" (key: the user message of the turn).
type call struct {
	node, kind, key string
	text            string // of a Telegram sendMessage
	start, end      time.Time
	ended           bool
	status          int
}

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]call, len(r.list))
	for i, c := range r.list {
		out[i] = *c
	}
	return out
}

// wait waits until cond holds for the calls recorded.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, cond func([]call) bool) {
	t.Helper()
	r.changes.Wait(t, timeout, what, func() bool { return cond(r.calls()) })
}

// front serves on ln, for node, a reverse proxy to target that records
// every call, and returns its URL.
func (r *recorder) front(t *testing.T, ln net.Listener, node, kind, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			c := &call{node: node, kind: kind, start: time.Now()}
			switch kind {
			case "telegram":
				c.key = path.Base(req.URL.Path)
				req.Header.Set(telegramtest.ClientHeader, node)
				if c.key == "sendMessage" {
					raw, _ := io.ReadAll(io.LimitReader(req.Body, 16<<20))
					req.Body = io.NopCloser(bytes.NewReader(raw))
					var m struct {
						Text string `json:"text"`
					}
					if json.Unmarshal(raw, &m) != nil {
						if v, err := url.ParseQuery(string(raw)); err == nil {
							m.Text = v.Get("text")
						}
					}
					c.text = m.Text
				}
			case "agent":
				raw, _ := io.ReadAll(io.LimitReader(req.Body, 16<<20))
				req.Body = io.NopCloser(bytes.NewReader(raw))
				var b agenttest.Body
				_ = json.Unmarshal(raw, &b)
				c.key = strings.TrimSpace(agenttest.Request{Body: b}.LastUser())
			}
			r.mu.Lock()
			r.list = append(r.list, c)
			r.mu.Unlock()
			r.changes.Notify()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			// Deferred: the proxy panics with http.ErrAbortHandler when
			// the client leaves in the middle of the response.
			defer func() {
				r.mu.Lock()
				c.end, c.ended, c.status = time.Now(), true, sw.status
				r.mu.Unlock()
				r.changes.Notify()
			}()
			proxy.ServeHTTP(sw, req)
		})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the reverse proxy flush the stream of an agent turn.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
