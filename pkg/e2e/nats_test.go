// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// natsEnv is a sandbox whose herald runs on store.backend nats: a NATS
// server with JetStream in the test process, reached from the sandbox
// through a proxy listening on the sandbox's loopback (which the test can
// cut), and a webhook reply receiver on that loopback too.
type natsEnv struct {
	*env
	proxy *natstest.Proxy
	rcv   *webhooktest.Receiver
}

func newNATSEnv(t *testing.T) *natsEnv {
	e := newEnv(t, envOpts{})
	srv := natstest.StartServer(t)
	ne := &natsEnv{env: e}
	ne.proxy = natstest.ServeProxy(t, e.loopback(), srv.Addr().String())
	ne.rcv = webhooktest.NewReceiver(t, webhooktest.WithListen(e.s.Listen))
	e.writeConfig(`log:
  level: debug
shutdown:
  drain_timeout: 5s
  adapter_timeout: 2s
agent:
  kind: echo
  echo:
    word_delay: 200ms
store:
  backend: nats
  nats:
    urls: ["` + ne.proxy.URL() + `"]
    replicas: 1
cluster:
  enabled: true
  node_id: e2e
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: ` + ne.rcv.URL + "\n")
	return ne
}

// replies are the distinct replies the receiver got, by text.
func (ne *natsEnv) replies() map[string]int {
	got := map[string]int{}
	for _, r := range ne.rcv.Delivered() {
		got[r.Text]++
	}
	return got
}

// TestNATSWebhookRestart: on store.backend nats, a webhook message is
// acknowledged once JetStream has it; `systemctl restart herald` while its
// turn runs (longer than drain_timeout, so it is interrupted); the next
// instance finds it pending in JetStream and answers it, once, and answers
// a message posted after the restart in the same conversation.
func TestNATSWebhookRestart(t *testing.T) {
	ne := newNATSEnv(t)
	ne.startReady()
	if st := ne.show("herald.service", "StatusText")["StatusText"]; !strings.HasPrefix(st, "ready: ") {
		t.Fatalf("StatusText on backend nats: %q", st)
	}
	// 40 words at 200 ms: the turn outlasts drain_timeout (5s), so the
	// restart interrupts it and the next instance runs it again from what
	// JetStream holds.
	first := strings.TrimSpace(strings.Repeat("word ", 40))
	if code, body, err := ne.post("nats-1", "chat", first, 0); err != nil || code != http.StatusAccepted {
		t.Fatalf("post 1: %d %s %v", code, body, err)
	}
	ne.waitTurns(1)
	pid := ne.mainPID()
	ne.systemctl("restart", "herald.service")
	ne.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 60*time.Second)
	if ne.mainPID() == pid {
		t.Fatal("herald was not restarted")
	}
	if code, body, err := ne.post("nats-2", "chat", "seven", 0); err != nil || code != http.StatusAccepted {
		t.Fatalf("post 2: %d %s %v", code, body, err)
	}
	ne.rcv.WaitDelivered(t, 2, 90*time.Second)
	got := ne.replies()
	if got["echo: "+first] != 1 || got["echo: seven"] != 1 || len(got) != 2 {
		t.Fatalf("replies: %v, want each message answered once", got)
	}
	t.Logf("replies %v, requests answered from the receiver's Idempotency-Key record: %d", got, ne.rcv.Duplicates())
}

// TestNATSDownAtStart: NATS unreachable when herald starts (the proxy
// blackholes: connection attempts time out). herald is still ready within
// its start bound, says why in STATUS=, herald status and doctor (check
// "nats"), refuses webhook messages with 503 and Retry-After. Once NATS is
// reachable it opens the store by itself, and the message the sender
// posts again is answered once.
func TestNATSDownAtStart(t *testing.T) {
	ne := newNATSEnv(t)
	ne.proxy.Cut()
	ne.startReady()
	st := ne.show("herald.service", "StatusText")["StatusText"]
	if !strings.HasPrefix(st, "degraded: message store cannot be written (NATS unreachable") {
		t.Fatalf("StatusText with NATS down: %q", st)
	}
	t.Logf("StatusText with NATS down: %s", st)
	status, _, _ := ne.run("herald", "status")
	if !strings.Contains(status, "store (nats)") || !strings.Contains(status, "DEGRADED") || !strings.Contains(status, "NATS unreachable") {
		t.Errorf("herald status with NATS down:\n%s", status)
	}
	d, code, raw := ne.doctor()
	if c := d.find("nats"); code == 0 || c == nil || c.Result != "FAIL" || !strings.Contains(c.Detail, "NATS unreachable") {
		t.Errorf("doctor nats check with NATS down: %+v (exit %d)\n%s", c, code, raw)
	}
	if c := d.find("store free space"); c != nil {
		t.Errorf("doctor checks a SQLite file on backend nats: %+v", c)
	}
	ne.writeRequest(t, "nats-down", http.StatusServiceUnavailable)
	if v := ne.metricValue("herald_store_writable", ""); v != 0 {
		t.Errorf("herald_store_writable = %v with NATS down, want 0", v)
	}

	ne.proxy.Restore()
	testwait.Within(t, 90*time.Second, "StatusText to say ready", func() bool {
		return strings.HasPrefix(ne.show("herald.service", "StatusText")["StatusText"], "ready: ")
	})
	// The sender retries, as told; the store takes it now.
	ne.writeRequest(t, "nats-down", http.StatusAccepted)
	ne.rcv.WaitDelivered(t, 1, 60*time.Second)
	if got := ne.replies(); got["echo: hello"] != 1 || len(got) != 1 {
		t.Fatalf("replies: %v, want one", got)
	}
	d, _, raw = ne.doctor()
	if c := d.find("nats"); c == nil || c.Result != "PASS" {
		t.Errorf("doctor nats check with NATS up: %+v\n%s", c, raw)
	}
	if v := ne.metricValue("herald_store_writable", ""); v != 1 {
		t.Errorf("herald_store_writable = %v with NATS up, want 1", v)
	}
}

// writeRequest posts "hello" with id and wants the status code.
func (ne *natsEnv) writeRequest(t *testing.T, id string, want int) {
	t.Helper()
	code, body, err := ne.post(id, "chat", "hello", 0)
	if err != nil || code != want {
		t.Fatalf("post %s: %d %s %v, want %d", id, code, body, err, want)
	}
	if want == http.StatusServiceUnavailable && !strings.Contains(body, "unavailable") {
		t.Fatalf("post %s: 503 body %s does not say why", id, body)
	}
	t.Logf("post %s: %d %s", id, code, strings.TrimSpace(body))
}

// TestNATSStopWhileDown: a herald waiting for NATS stops cleanly when
// asked: the background retry ends with the daemon, systemd does not have
// to kill it (Result success), and the next start waits for NATS again.
func TestNATSStopWhileDown(t *testing.T) {
	ne := newNATSEnv(t)
	ne.proxy.Cut()
	ne.startReady()
	took, code, out := ne.timed("stop", "herald.service")
	if code != 0 {
		t.Fatalf("systemctl stop: exit %d: %s", code, out)
	}
	if p := ne.show("herald.service", "ActiveState", "Result"); p["ActiveState"] != "inactive" || p["Result"] != "success" {
		t.Fatalf("after stop: %v", p)
	}
	t.Logf("stop while waiting for NATS took %s", took.Round(time.Millisecond))
	ne.startReady()
	if st := ne.show("herald.service", "StatusText")["StatusText"]; !strings.Contains(st, "NATS unreachable") {
		t.Fatalf("StatusText after a second start with NATS down: %q", st)
	}
}
