// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// metricValue reads one sample of herald's /metrics ("" labels: the only
// sample of name).
func (e *env) metricValue(name, labels string) float64 {
	e.t.Helper()
	out, _, _ := e.run("curl", "-sf", "--unix-socket", "/run/herald/admin.sock", "http://herald/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestFullDiskIsVisible: with the state directory on a small tmpfs that
// fills up while turns run, herald says so everywhere an operator looks
// (StatusText, herald status, doctor, /readyz, the journal, /metrics),
// keeps the finished replies instead of running the turns again, and
// delivers them, once each, when space is freed.
func TestFullDiskIsVisible(t *testing.T) {
	e := newEnv(t, envOpts{})
	rcv := newReceiver(t, e)
	e.writeConfig(`log:
  level: debug
agent:
  kind: echo
  echo:
    word_delay: 300ms
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: ` + rcv.url() + "\n")
	e.sh(`install -d /var/lib/herald && mount -t tmpfs -o size=8m,mode=0750 herald-state /var/lib/herald && chown herald:herald /var/lib/herald`)
	e.startReady()
	inv := e.show("herald.service", "InvocationID")["InvocationID"]

	text := strings.TrimSpace(strings.Repeat("word ", 12)) // about 4s of streaming
	for i := 1; i <= 3; i++ {
		if code, body, err := e.post(fmt.Sprint("full-", i), fmt.Sprint("chat", i), text, 0); err != nil || code != http.StatusAccepted {
			t.Fatalf("post %d: %d %s %v", i, code, body, err)
		}
	}
	e.waitTurns(3)
	// Fill the file system while the turns run: their ends cannot be
	// written.
	e.run("dd", "if=/dev/zero", "of=/var/lib/herald/fill", "bs=64k")

	testwait.Within(e.t, 60*time.Second, "StatusText to say degraded", func() bool {
		st := e.show("herald.service", "StatusText")["StatusText"]
		return strings.HasPrefix(st, "degraded: message store cannot be written (disk full, ")
	})
	ev := e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgStoreUnwritable, "_SYSTEMD_INVOCATION_ID": inv}, 10*time.Second)
	if msg, _ := ev["MESSAGE"].(string); !strings.Contains(msg, "disk full") {
		t.Errorf("journal MESSAGE %q does not name the cause", msg)
	}
	if cause, _ := ev["CAUSE"].(string); cause != "disk full" {
		t.Errorf("journal CAUSE=%q", cause)
	}
	out, _, _ := e.run("curl", "-s", "-w", "\n%{http_code}", "--unix-socket", "/run/herald/admin.sock", "http://herald/readyz")
	if !strings.HasSuffix(out, "\n503") || !strings.Contains(out, "disk full") {
		t.Errorf("/readyz on a full disk: %q, want 503 naming the disk", out)
	}
	if v := e.metricValue("herald_store_writable", ""); v != 0 {
		t.Errorf("herald_store_writable = %v, want 0", v)
	}
	if v := e.metricValue("herald_store_write_errors_total", `{cause="disk full"}`); v < 1 {
		t.Errorf("herald_store_write_errors_total{cause=\"disk full\"} = %v", v)
	}
	t.Logf("StatusText on a full disk: %s", e.show("herald.service", "StatusText")["StatusText"])
	t.Logf("journal: %s", ev["MESSAGE"])
	status, _, code := e.run("herald", "status")
	t.Logf("herald status on a full disk:\n%s", status)
	if code != 0 || !strings.Contains(status, "DEGRADED") || !strings.Contains(status, "disk full") || !strings.Contains(status, "0 B free of 8 MiB") {
		t.Errorf("herald status on a full disk (exit %d):\n%s", code, status)
	}
	d, code, raw := e.doctor()
	c := d.find("store")
	if code == 0 || c == nil || c.Result != "FAIL" || !strings.Contains(c.Detail, "disk full") || !strings.Contains(c.Detail, "0 B free of 8 MiB on /var/lib/herald") || !strings.Contains(c.Fix, "free space") {
		t.Errorf("doctor store check on a full disk: %+v (exit %d)\n%s", c, code, raw)
	}
	doctorText, _, _ := e.run("herald", "doctor")
	t.Logf("herald doctor on a full disk:\n%s", doctorText)
	if c := d.find("store free space"); c == nil || c.Result != "FAIL" {
		t.Errorf("doctor free space check on a full disk: %+v", c)
	}
	// A while on a full disk: the write is retried, the agent is not.
	testwait.Within(e.t, 60*time.Second, "several failed writes", func() bool {
		return e.metricValue("herald_store_write_errors_total", `{cause="disk full"}`) >= 6
	})
	if n := e.metricValue("herald_agent_turns_total", `{result="ok"}`); n != 3 {
		t.Errorf("herald_agent_turns_total{result=\"ok\"} = %v on a full disk, want 3 (no turn runs twice)", n)
	}

	e.sh("rm /var/lib/herald/fill")
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgStoreWritable, "_SYSTEMD_INVOCATION_ID": inv}, 60*time.Second)
	got := rcv.wait(t, 3, 60*time.Second)
	for _, r := range got {
		if r != "echo: "+text {
			t.Errorf("reply %q", r)
		}
	}
	testwait.Within(e.t, 30*time.Second, "StatusText to say ready", func() bool {
		return strings.HasPrefix(e.show("herald.service", "StatusText")["StatusText"], "ready: ")
	})
	if v := e.metricValue("herald_store_writable", ""); v != 1 {
		t.Errorf("herald_store_writable = %v after space was freed", v)
	}
	if n := e.metricValue("herald_agent_turns_total", `{result="ok"}`); n != 3 {
		t.Errorf("herald_agent_turns_total{result=\"ok\"} = %v, want 3", n)
	}
	if len(rcv.got()) != 3 {
		t.Errorf("replies: %q, want 3", rcv.got())
	}
	if d, _, raw := e.doctor(); d.find("store") == nil || d.find("store").Result != "PASS" {
		t.Errorf("doctor after space was freed:\n%s", raw)
	}
}
