// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/secret"
	"github.com/heraldgw/herald/pkg/store"
)

// runsEnv is a dispatcher whose agent is kind hermes on a fake Runs API,
// with restarts of the dispatcher and store (the fake keeps running, as
// Hermes does while herald restarts).
type runsEnv struct {
	t    *testing.T
	f    *agenttest.Runs
	ag   agent.Agent
	ad   *fakeAdapter
	path string
	st   *store.Store
	d    *Dispatcher
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
	e := &runsEnv{t: t, f: f, ag: ag, ad: newFakeAdapter("p"), path: filepath.Join(t.TempDir(), "herald.db")}
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
	e.d = New(st, e.ag, map[string]Platform{"p": {Adapter: e.ad, Policy: allowAll, Idempotent: true}}, Options{InitialBackoff: 10 * time.Millisecond, TurnRetryBackoff: 10 * time.Millisecond}, quietLog(), metrics.Nop())
	if _, _, err := e.d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *runsEnv) close() {
	if e.d != nil {
		e.d.Close()
		e.d = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
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
