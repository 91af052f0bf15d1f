// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// receiver collects webhook replies inside the sandbox's network namespace.
type receiver struct {
	srv  *http.Server
	addr string

	mu      sync.Mutex
	replies []string
	seen    map[string]bool
}

func newReceiver(t *testing.T, e *env) *receiver {
	t.Helper()
	ln, err := e.s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{addr: ln.Addr().String(), seen: map[string]bool{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Text string `json:"text"`
		}
		b, _ := io.ReadAll(req.Body)
		json.Unmarshal(b, &body)
		r.mu.Lock()
		if key := req.Header.Get("Idempotency-Key"); !r.seen[key] {
			r.seen[key] = true
			r.replies = append(r.replies, body.Text)
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/reply" }

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.replies...)
}

func (r *receiver) wait(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	var g []string
	if !testwait.Until(timeout, func() bool { g = r.got(); return len(g) >= n }) {
		t.Fatalf("receiver got %d replies, want %d", len(g), n)
	}
	return g
}

// waitTurns polls herald's admin status until n turns are in flight.
func (e *env) waitTurns(n int) {
	e.t.Helper()
	if !testwait.Until(15*time.Second, func() bool {
		out, _, _ := e.run("curl", "-sf", "--unix-socket", "/run/herald/admin.sock", "http://herald/status")
		var st struct {
			TurnsInFlight int `json:"turns_in_flight"`
		}
		return json.Unmarshal([]byte(out), &st) == nil && st.TurnsInFlight == n
	}) {
		e.t.Fatalf("herald never had %d turns in flight", n)
	}
}

// Scenario 5a: work that outlasts TimeoutStopSec but makes progress
// finishes, because herald extends the stop timeout while it drains.
func TestDrainOutlastsTimeoutStopSec(t *testing.T) {
	e := newEnv(t, envOpts{dropIn: "[Service]\nTimeoutStopSec=3s\n"})
	rcv := newReceiver(t, e)
	e.writeConfig(`shutdown:
  drain_timeout: 20s
  adapter_timeout: 2s
agent:
  kind: echo
  echo:
    word_delay: 200ms
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: ` + rcv.url() + "\n")
	e.startReady()
	text := strings.TrimSpace(strings.Repeat("word ", 30)) // about 6s of streaming
	if code, body, err := e.post("slow", "c1", text, 0); err != nil || code != http.StatusAccepted {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	e.waitTurns(1)
	inv := e.show("herald.service", "InvocationID")["InvocationID"]
	took, code, out := e.timed("stop", "herald.service")
	if code != 0 {
		t.Fatalf("systemctl stop: %d %s", code, out)
	}
	if took < 4*time.Second {
		t.Fatalf("stop took %v: the 6s turn cannot have finished", took)
	}
	st := e.show("herald.service", "ActiveState", "Result", "ExecMainStatus")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" || st["ExecMainStatus"] != "0" {
		t.Fatalf("after a stop longer than TimeoutStopSec=3s: %v, want inactive/success/0", st)
	}
	if got := rcv.wait(t, 1, 5*time.Second); got[0] != "echo: "+text {
		t.Fatalf("reply %q", got[0])
	}
	e.waitJournal("", map[string]string{"MESSAGE_ID": logging.MsgDrainFinished, "INVOCATION_ID": inv}, 5*time.Second)
	if j := e.journalText("herald.service"); strings.Contains(j, "timed out") {
		t.Fatalf("journal reports a timeout:\n%s", j)
	}
}

// Scenario 5b: work that never finishes is cut at drain_timeout and the
// stop is still clean; the message waits for the next instance.
func TestDrainCutAtDrainTimeout(t *testing.T) {
	e := newEnv(t, envOpts{dropIn: "[Service]\nTimeoutStopSec=2s\n"})
	rcv := newReceiver(t, e)
	// An agent that accepts the request and never answers.
	ln, err := e.s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hang := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})}
	go hang.Serve(ln)
	t.Cleanup(func() { hang.Close() })
	cfg := func(agent string) string {
		return `shutdown:
  drain_timeout: 4s
  adapter_timeout: 1s
` + agent + `platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: ` + rcv.url() + "\n"
	}
	e.writeConfig(cfg("agent:\n  kind: openai\n  url: http://" + ln.Addr().String() + "\n"))
	e.startReady()
	if code, body, err := e.post("stuck", "c1", "hello", 0); err != nil || code != http.StatusAccepted {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	e.waitTurns(1)
	took, code, out := e.timed("stop", "herald.service")
	if code != 0 {
		t.Fatalf("systemctl stop: %d %s", code, out)
	}
	// Cut at drain_timeout 4s (past TimeoutStopSec=2s thanks to
	// EXTEND_TIMEOUT_USEC), within the bound 4s + 1s + 2s.
	if took < 4*time.Second || took > 7*time.Second {
		t.Fatalf("stop took %v, want drain_timeout 4s … bound 7s", took)
	}
	st := e.show("herald.service", "ActiveState", "Result", "ExecMainStatus")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Fatalf("after the cut drain: %v, want inactive/success", st)
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgDrainTimedOut}, 5*time.Second)
	// Nothing lost: the next instance, with a working agent, answers.
	e.writeConfig(cfg("agent:\n  kind: echo\n"))
	e.startReady()
	if got := rcv.wait(t, 1, 15*time.Second); got[0] != "echo: hello" {
		t.Fatalf("reply %q", got[0])
	}
}
