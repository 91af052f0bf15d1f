// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/secret"
	"github.com/heraldgw/herald/pkg/store"
)

// runsEnv is a dispatcher whose agent is kind hermes on a fake Runs API,
// with restarts of the dispatcher and store (the fake keeps running, as
// Hermes does while herald restarts).
type runsEnv struct {
	t      *testing.T
	policy Policy
	opts   Options
	f      *agenttest.Runs
	ag     agent.Agent
	ad     *fakeAdapter
	path   string
	st     *store.Store
	d      *Dispatcher
}

func newRunsEnv(t *testing.T, o agenttest.RunsOptions) *runsEnv {
	t.Helper()
	f := agenttest.NewRuns(t, o)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(config.Agent{Kind: "hermes", URL: f.URL, Key: secret.Ref{File: key}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	e := &runsEnv{t: t, f: f, ag: ag, ad: newFakeAdapter("p"), path: filepath.Join(t.TempDir(), "herald.db"), policy: allowAll,
		opts: Options{InitialBackoff: 10 * time.Millisecond, TurnRetryBackoff: 10 * time.Millisecond}}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *runsEnv) open() {
	e.t.Helper()
	st, err := store.Open(context.Background(), e.path, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.d = New(st, e.ag, map[string]Platform{"p": {Adapter: e.ad, Policy: e.policy, Idempotent: true}}, e.opts, quietLog(), metrics.Nop())
	if _, _, err := e.d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *runsEnv) close() {
	(&env{d: e.d, st: e.st}).close()
	e.d, e.st = nil, nil
}

// stop drains with an already-expired deadline (turns in flight detach)
// and closes the store: the instance is gone.
func (e *runsEnv) stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.d.Drain(ctx)
	e.d = nil
	e.close()
}

func (e *runsEnv) wait(what string, cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.f.Wait(ctx, what, cond); err != nil {
		e.t.Fatal(err)
	}
}

// runRecorded waits until the message's run is in the store.
func (e *runsEnv) runRecorded() {
	e.t.Helper()
	e.wait("the run recorded", func() bool {
		n, err := e.st.RunsInFlight(context.Background())
		return err == nil && n == 1
	})
}

func TestRunSurvivesRestart(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{WordDelay: 20 * time.Millisecond})
	text := "one two three four five six seven eight nine ten"
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", text)); err != nil {
		t.Fatal(err)
	}
	e.runRecorded()
	e.stop()
	if len(e.f.Stops()) != 0 {
		t.Fatal("stopping herald stopped the run")
	}
	e.open()
	sent := e.ad.waitSent(t, 1)
	if len(sent) != 1 || sent[0].Text != "run: "+text {
		t.Fatalf("sent %+v", sent)
	}
	if n, posts := e.f.TotalExecutions(), len(e.f.RunRequests()); n != 1 || posts != 1 {
		t.Fatalf("%d executions, %d POSTs; want 1, 1 (re-attached by the stored run id)", n, posts)
	}
	waitPending(t, e.st, 0)
}

func TestRunInterruptedByBackendRestart(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{WordDelay: 50 * time.Millisecond})
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", "a b c d e f g h i j")); err != nil {
		t.Fatal(err)
	}
	e.runRecorded()
	e.stop()
	e.f.Restart()
	e.open()
	sent := e.ad.waitSent(t, 1)
	if sent[0].Text != rejectedText(&agent.RunError{Status: "interrupted"}) {
		t.Fatalf("sent %+v", sent)
	}
	if n := e.f.TotalExecutions(); n != 1 {
		t.Fatalf("%d executions", n)
	}
}

// With agent.rerun_interrupted, a run the backend interrupted runs once
// more under a new key; herald restarting during the re-run re-attaches to
// it (no third run), and the user gets the reply once.
func TestRerunInterruptedByBackendRestart(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{WordDelay: 50 * time.Millisecond})
	e.stop()
	e.opts.RerunInterrupted = true
	e.open()
	text := "a b c d e f g h i j"
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", text)); err != nil {
		t.Fatal(err)
	}
	e.runRecorded()
	first := e.f.RunRequests()[0].RunID
	e.stop()
	e.f.Restart()
	e.open()
	e.wait("the re-run recorded", func() bool {
		if len(e.f.RunRequests()) != 2 {
			return false
		}
		id, _, ok, err := e.st.Run(context.Background(), 1)
		return err == nil && ok && id != first
	})
	e.stop()
	e.open()
	sent := e.ad.waitSent(t, 1)
	if len(sent) != 1 || sent[0].Text != "run: "+text {
		t.Fatalf("sent %+v", sent)
	}
	waitPending(t, e.st, 0)
	if n, posts := e.f.TotalExecutions(), len(e.f.RunRequests()); n != 2 || posts != 2 {
		t.Fatalf("%d executions, %d POSTs; want 2, 2 (one re-run, re-attached after the restart)", n, posts)
	}
	keys := e.f.ExecutionsByKey()
	k0 := message.IdempotencyKey("p", "1", 0)
	if len(keys) != 2 || keys[k0] != 1 || keys[k0+"-r1"] != 1 {
		t.Fatalf("executions by key %v", keys)
	}
	if sent := e.ad.Sent(); len(sent) != 1 {
		t.Fatalf("sent %+v", sent)
	}
}

func TestStopStopsRun(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{WordDelay: 50 * time.Millisecond})
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", "a b c d e f g h i j k l m n")); err != nil {
		t.Fatal(err)
	}
	e.runRecorded()
	if err := e.d.Deliver(context.Background(), in("2", "c", "u", "/stop")); err != nil {
		t.Fatal(err)
	}
	e.wait("a stop call", func() bool { return len(e.f.Stops()) == 1 })
	run := e.f.RunRequests()[0].RunID
	e.wait("the run cancelled", func() bool { return e.f.Status(run) == agenttest.StatusCancelled })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.d.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	e.d = nil
	if sent := e.ad.Sent(); len(sent) != 1 || sent[0].Text != "Stopped." {
		t.Fatalf("sent %+v", sent)
	}
}

// texts returns the texts the user was sent. The answer to /approve or
// /deny and the run's reply race (the run goes on as soon as the backend
// has the answer), so the texts after the first are sorted.
func texts(sent []message.Outbound) []string {
	out := make([]string, len(sent))
	for i, m := range sent {
		out[i] = m.Text
	}
	if len(out) > 1 {
		sort.Strings(out[1:])
	}
	return out
}

const approvalAsk = "The agent asks to run terminal:\nrm -rf /tmp/x\n(dangerous command)\nReply /approve to allow it once or /deny to refuse. Without an answer within 5m0s it is denied."

// The run asks, herald restarts, the user answers /approve to the next
// instance and the run completes: the prompt is shown once.
func TestApprovalSurvivesRestart(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{})
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", agenttest.InputApprove+" rm -rf /tmp/x")); err != nil {
		t.Fatal(err)
	}
	if got := e.ad.waitSent(t, 1); got[0].Text != approvalAsk {
		t.Fatalf("prompt %q", got[0].Text)
	}
	e.stop()
	e.open()
	if err := e.d.Deliver(context.Background(), in("2", "c", "u", "/approve")); err != nil {
		t.Fatal(err)
	}
	e.ad.waitSent(t, 3)
	waitPending(t, e.st, 0)
	want := texts([]message.Outbound{{Text: approvalAsk}, {Text: "Approved."}, {Text: "run: approved rm -rf /tmp/x"}})
	if got := texts(e.ad.Sent()); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the user sees %q, want %q", got, want)
	}
	if a := e.f.Approvals(); len(a) != 1 || a[0].Choice != "once" || a[0].Status != 200 || a[0].RequestID == "" {
		t.Fatalf("approvals %+v", a)
	}
	if n := e.f.TotalExecutions(); n != 1 {
		t.Fatalf("%d executions", n)
	}
}

func TestApprovalDenyAndTimeout(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answer  string
		timeout time.Duration
		want    []string
	}{
		{"deny", "/deny", 0, []string{"Denied.", "run: denied rm -rf /tmp/x"}},
		{"timeout", "", 300 * time.Millisecond, []string{"No answer within 300ms: the request was denied.", "run: denied rm -rf /tmp/x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunsEnv(t, agenttest.RunsOptions{})
			if tt.timeout > 0 {
				e.close()
				e.opts.ApprovalTimeout = tt.timeout
				e.open()
			}
			if err := e.d.Deliver(context.Background(), in("1", "c", "u", agenttest.InputApprove+" rm -rf /tmp/x")); err != nil {
				t.Fatal(err)
			}
			e.ad.waitSent(t, 1)
			if tt.answer != "" {
				if err := e.d.Deliver(context.Background(), in("2", "c", "u", tt.answer)); err != nil {
					t.Fatal(err)
				}
			}
			e.ad.waitSent(t, 3)
			waitPending(t, e.st, 0)
			got := texts(e.ad.Sent())[1:]
			sort.Strings(tt.want)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("after the prompt the user sees %q, want %q", got, tt.want)
			}
			if a := e.f.Approvals(); len(a) != 1 || a[0].Choice != "deny" {
				t.Fatalf("approvals %+v", a)
			}
		})
	}
}

// Only an allowed user may answer: anyone else is refused, and the run
// goes on waiting.
func TestApprovalOnlyAllowedUsers(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{})
	e.close()
	e.policy = Policy{AllowedUsers: []string{"u"}, Unauthorized: "reply", UnauthorizedText: "no", GroupSessionsPerUser: false}
	e.open()
	group := func(event, sender, text string) *message.Inbound {
		m := in(event, "g", sender, text)
		m.ChatType = message.ChatGroup
		return m
	}
	if err := e.d.Deliver(context.Background(), group("1", "u", agenttest.InputApprove+" rm -rf /tmp/x")); err != nil {
		t.Fatal(err)
	}
	e.ad.waitSent(t, 1)
	if err := e.d.Deliver(context.Background(), group("2", "intruder", "/approve")); err != nil {
		t.Fatal(err)
	}
	waitPending(t, e.st, 1) // the intruder's message is refused, not pending
	if len(e.f.Approvals()) != 0 || len(e.f.Pending()) != 1 {
		t.Fatalf("approvals %+v, pending %v", e.f.Approvals(), e.f.Pending())
	}
	if err := e.d.Deliver(context.Background(), group("3", "u", "/approve")); err != nil {
		t.Fatal(err)
	}
	e.ad.waitSent(t, 3)
	waitPending(t, e.st, 0)
	if a := e.f.Approvals(); len(a) != 1 || a[0].Choice != "once" {
		t.Fatalf("approvals %+v", a)
	}
}

// busy_policy interrupt: a new message stops the running run, and the new
// one is answered.
func TestInterruptStopsRun(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{WordDelay: 50 * time.Millisecond})
	e.close()
	e.opts.BusyPolicy = "interrupt"
	e.open()
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", "a b c d e f g h i j k l m n")); err != nil {
		t.Fatal(err)
	}
	e.runRecorded()
	if err := e.d.Deliver(context.Background(), in("2", "c", "u", "second")); err != nil {
		t.Fatal(err)
	}
	e.ad.waitSent(t, 1)
	waitPending(t, e.st, 0)
	first := e.f.RunRequests()[0].RunID
	if stops := e.f.Stops(); len(stops) != 1 || stops[0] != first {
		t.Fatalf("stops %v, want [%s]", stops, first)
	}
	if sent := texts(e.ad.Sent()); len(sent) != 1 || sent[0] != "run: second" {
		t.Fatalf("sent %q", sent)
	}
}
