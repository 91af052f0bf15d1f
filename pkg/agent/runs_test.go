// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

const runsWait = 30 * time.Second

// newRunsClient is a kind hermes client of fake f, with short poll and
// backoff intervals, logging into the returned hook.
func newRunsClient(t *testing.T, f *agenttest.Runs, edit func(*config.Agent)) (*client, *test.Hook) {
	t.Helper()
	cfg := config.Agent{Kind: "hermes", Key: keyFile(t, "runs-key")}
	if f != nil {
		cfg.URL = f.URL
	}
	if edit != nil {
		edit(&cfg)
	}
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	a, err := New(cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	c := a.(*client)
	c.backoffBase, c.backoffMax = time.Millisecond, 5*time.Millisecond
	c.pollInterval = 20 * time.Millisecond
	c.statusEvery = 100 * time.Millisecond
	t.Cleanup(c.CloseIdleConnections)
	return c, hook
}

func keyFile(t *testing.T, key string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref{File: p}
}

func runRequest(text, key string) Request {
	return Request{
		SessionID:      "telegram:dm:42#1",
		SessionKey:     "telegram:dm:42",
		Messages:       []Message{{Role: RoleUser, Content: text}},
		IdempotencyKey: key,
	}
}

// runRecorder collects what a turn reports.
type runRecorder struct {
	mu     sync.Mutex
	deltas strings.Builder
	runs   []Run
	kinds  []string
	seen   chan struct{} // closed at the first delta
	once   sync.Once
}

func newRunRecorder() *runRecorder { return &runRecorder{seen: make(chan struct{})} }

func (r *runRecorder) events() Events {
	return Events{
		Delta: func(s string) {
			r.mu.Lock()
			r.deltas.WriteString(s)
			r.mu.Unlock()
			r.once.Do(func() { close(r.seen) })
		},
		Progress: func(k string) {
			r.mu.Lock()
			r.kinds = append(r.kinds, k)
			r.mu.Unlock()
		},
		RunStarted: func(run Run) error {
			r.mu.Lock()
			r.runs = append(r.runs, run)
			r.mu.Unlock()
			return nil
		},
	}
}

func (r *runRecorder) lastRun(t *testing.T) *Run {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.runs) == 0 {
		t.Fatal("RunStarted was not called")
	}
	run := r.runs[len(r.runs)-1]
	return &run
}

func (r *runRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deltas.String()
}

func TestRunsComplete(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{})
	c, _ := newRunsClient(t, f, nil)
	rec := newRunRecorder()
	out, err := c.Complete(context.Background(), runRequest("hello there", "hr-a-0"), rec.events())
	if err != nil {
		t.Fatal(err)
	}
	if out != "run: hello there" || rec.text() != out {
		t.Fatalf("reply %q, deltas %q", out, rec.text())
	}
	if mode, _ := c.Mode(); mode != ModeRuns {
		t.Fatalf("mode %q", mode)
	}
	reqs := f.RunRequests()
	if len(reqs) != 1 || reqs[0].SessionKey != "telegram:dm:42" || reqs[0].Body["session_id"] != "telegram:dm:42#1" || reqs[0].Body["input"] != "hello there" {
		t.Fatalf("requests %+v", reqs)
	}
	if _, ok := reqs[0].Body["model"]; ok {
		t.Errorf("the default model name was sent: %s", reqs[0].Raw)
	}
	if got := rec.lastRun(t); got.ID != reqs[0].RunID || string(got.Body) != string(reqs[0].Raw) {
		t.Fatalf("RunStarted got %+v, want %s %s", got, reqs[0].RunID, reqs[0].Raw)
	}
	if n := f.Executions("hr-a-0"); n != 1 {
		t.Fatalf("%d executions", n)
	}
	// The second turn asks no capabilities again.
	if _, err := c.Complete(context.Background(), runRequest("again", "hr-b-0"), Events{}); err != nil {
		t.Fatal(err)
	}
	if n := f.CapabilityRequests(); n != 1 {
		t.Fatalf("%d capability requests", n)
	}
}

// TestRunsImageAsNote: a run's input is text, so a message with an image
// goes as its text with the image's note and link, never as image_url parts
// or a data: URL.
func TestRunsImageAsNote(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{})
	c, _ := newRunsClient(t, f, nil)
	text := "look\n[image 1280×720 png, 84 KiB] http://herald.test/media/abc"
	req := runRequest(text, "hr-img-0")
	req.Messages[0].Parts = []ContentPart{{Type: "text", Text: text}, {Type: "image_url", ImageURL: &ImageURL{URL: "data:image/png;base64,iVBORw0KGgo="}}}
	if _, err := c.Complete(context.Background(), req, Events{}); err != nil {
		t.Fatal(err)
	}
	reqs := f.RunRequests()
	if len(reqs) != 1 || reqs[0].Body["input"] != text {
		t.Fatalf("requests %+v", reqs)
	}
	if raw := string(reqs[0].Raw); strings.Contains(raw, "image_url") || strings.Contains(raw, "data:") {
		t.Fatalf("the run body carries image parts: %s", raw)
	}
}

func TestRunsFallback(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features map[string]bool
		force    string
		note     string
		warn     bool
	}{
		{"no run_stop", map[string]bool{"run_submission": true, "run_status": true, "run_events_sse": true}, "", "run_stop", true},
		{"forced", nil, "chat_completions", "forced", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := agenttest.NewRuns(t, agenttest.RunsOptions{Features: tt.features})
			c, hook := newRunsClient(t, f, func(a *config.Agent) { a.HermesAPI = tt.force })
			for i, key := range []string{"hr-a-0", "hr-b-0"} {
				out, err := c.Complete(context.Background(), runRequest("hi", key), Events{})
				if err != nil || out != "agent: hi" {
					t.Fatalf("turn %d: %q %v", i, out, err)
				}
			}
			mode, note := c.Mode()
			if mode != ModeChatCompletions || !strings.Contains(note, tt.note) {
				t.Fatalf("mode %q note %q", mode, note)
			}
			if len(f.RunRequests()) != 0 || f.ChatCompletions() != 2 {
				t.Fatalf("%d runs, %d chat completions", len(f.RunRequests()), f.ChatCompletions())
			}
			warns := 0
			for _, e := range hook.AllEntries() {
				if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "falls back to chat completions") {
					warns++
					if !strings.Contains(e.Message, tt.note) {
						t.Errorf("warning %q does not name %q", e.Message, tt.note)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.warn]; warns != want {
				t.Fatalf("%d fallback warnings, want %d", warns, want)
			}
		})
	}
}

// An older Hermes without /v1/capabilities: chat completions, and the
// memory scope header is sent there too.
func TestRunsFallbackNoCapabilities(t *testing.T) {
	srv := agenttest.New(t)
	c := newTestClient(t, srv, "hermes", nil)
	req := userRequest("x")
	req.SessionKey = "telegram:group:7:u:9"
	if _, err := c.Complete(context.Background(), req, Events{}); err != nil {
		t.Fatal(err)
	}
	if mode, note := c.Mode(); mode != ModeChatCompletions || !strings.Contains(note, "404") {
		t.Fatalf("mode %q note %q", mode, note)
	}
	if got := srv.Requests()[0].Header.Get("X-Hermes-Session-Key"); got != "telegram:group:7:u:9" {
		t.Fatalf("X-Hermes-Session-Key %q", got)
	}
}

func TestMemoryScope(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tt := range []struct{ in, want string }{
		{"telegram:dm:42", "telegram:dm:42"},
		{strings.Repeat("y", 256), strings.Repeat("y", 256)},
	} {
		if got := MemoryScope(tt.in); got != tt.want {
			t.Errorf("MemoryScope(%q) = %q", tt.in, got)
		}
	}
	for _, in := range []string{long, "a\nb", "a\x00b", "a\x7fb"} {
		got := MemoryScope(in)
		if !strings.HasPrefix(got, "herald-") || len(got) > 256 || got != MemoryScope(in) || strings.ContainsAny(got, "\r\n\x00") {
			t.Errorf("MemoryScope(%q) = %q", in, got)
		}
	}
	if MemoryScope("a\nb") == MemoryScope("a\rb") {
		t.Error("different keys share a scope")
	}
}

// detach starts a turn, waits for its first delta and cancels it as a
// shutdown does (no stop cause); it returns the run the turn reported.
func detach(t *testing.T, c *client, req Request) *Run {
	t.Helper()
	rec := newRunRecorder()
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Complete(ctx, req, rec.events())
		done <- err
	}()
	select {
	case <-rec.seen:
	case <-time.After(runsWait):
		t.Fatal("no delta")
	}
	cancel(errors.New("shutdown"))
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("detached turn: %v", err)
	}
	return rec.lastRun(t)
}

func TestRunsReattach(t *testing.T) {
	for _, tt := range []struct {
		name      string
		resumable bool
		link      bool // the run is passed back (else only the key finds it)
		expire    bool // the buffer expires before re-attaching
	}{
		{"older stream", false, true, false},
		{"resumable stream", true, true, false},
		{"no link: the key replays the run", false, false, false},
		{"buffer expired", true, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ttl := time.Hour
			if tt.expire {
				ttl = 50 * time.Millisecond
			}
			f := agenttest.NewRuns(t, agenttest.RunsOptions{Resumable: tt.resumable, WordDelay: 30 * time.Millisecond, BufferTTL: ttl})
			c, hook := newRunsClient(t, f, nil)
			req := runRequest("one two three four five six", "hr-r-0")
			run := detach(t, c, req)
			if len(f.Stops()) != 0 {
				t.Fatal("a detach stopped the run")
			}
			if tt.expire {
				ctx, cancel := context.WithTimeout(context.Background(), runsWait)
				defer cancel()
				if err := f.Wait(ctx, "buffer expiry", func() bool { return f.BufferExpired(run.ID) }); err != nil {
					t.Fatal(err)
				}
			}
			if tt.link {
				req.Run = run
			}
			rec := newRunRecorder()
			out, err := c.Complete(context.Background(), req, rec.events())
			if err != nil {
				t.Fatal(err)
			}
			if out != "run: one two three four five six" || rec.text() != out {
				t.Fatalf("reply %q deltas %q", out, rec.text())
			}
			if n := f.Executions("hr-r-0"); n != 1 {
				t.Fatalf("%d executions, want 1", n)
			}
			detached := false
			for _, e := range hook.AllEntries() {
				detached = detached || strings.Contains(e.Message, "detached from the run")
			}
			if !detached {
				t.Error("the detach was not logged")
			}
		})
	}
}

func TestRunsCompletedWhileAway(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{WordDelay: 20 * time.Millisecond})
	c, _ := newRunsClient(t, f, nil)
	req := runRequest("a b c", "hr-c-0")
	run := detach(t, c, req)
	ctx, cancel := context.WithTimeout(context.Background(), runsWait)
	defer cancel()
	if err := f.Wait(ctx, "completion", func() bool { return f.Status(run.ID) == agenttest.StatusCompleted }); err != nil {
		t.Fatal(err)
	}
	req.Run = run
	out, err := c.Complete(context.Background(), req, Events{})
	if err != nil || out != "run: a b c" {
		t.Fatalf("%q %v", out, err)
	}
	if n := f.Executions("hr-c-0"); n != 1 || len(f.RunRequests()) != 1 {
		t.Fatalf("%d executions, %d POSTs", n, len(f.RunRequests()))
	}
}

// A run the backend forgot (evicted with its key) is created again under
// the same key: the turn runs a second time, the window the docs describe.
func TestRunsEvicted(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{WordDelay: 20 * time.Millisecond})
	c, _ := newRunsClient(t, f, nil)
	req := runRequest("x y", "hr-e-0")
	run := detach(t, c, req)
	f.Evict(run.ID)
	req.Run = run
	rec := newRunRecorder()
	out, err := c.Complete(context.Background(), req, rec.events())
	if err != nil || out != "run: x y" {
		t.Fatalf("%q %v", out, err)
	}
	if n := f.Executions("hr-e-0"); n != 2 {
		t.Fatalf("%d executions, want 2", n)
	}
	if got := rec.lastRun(t); got.ID == run.ID || string(got.Body) != string(run.Body) {
		t.Fatalf("recreated run %+v from %+v", got, run)
	}
}

func TestRunsStop(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{WordDelay: 50 * time.Millisecond})
	c, _ := newRunsClient(t, f, nil)
	rec := newRunRecorder()
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Complete(ctx, runRequest("a b c d e f g h", "hr-s-0"), rec.events())
		done <- err
	}()
	<-rec.seen
	cancel(ErrStopRequested)
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrStopRequested) {
		t.Fatalf("stopped turn: %v", err)
	}
	run := rec.lastRun(t)
	if got := f.Stops(); len(got) != 1 || got[0] != run.ID {
		t.Fatalf("stops %v, want [%s]", got, run.ID)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), runsWait)
	defer wcancel()
	if err := f.Wait(wctx, "cancelled", func() bool { return f.Status(run.ID) == agenttest.StatusCancelled }); err != nil {
		t.Fatal(err)
	}
	// Re-attaching to it (a restart right after /stop) tells the user.
	req := runRequest("a b c d e f g h", "hr-s-0")
	req.Run = run
	_, err := c.Complete(context.Background(), req, Events{})
	var re *RunError
	if !errors.As(err, &re) || re.Status != "cancelled" || !errors.Is(err, ErrRejected) {
		t.Fatalf("error %v", err)
	}
}

func TestRunsEnded(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{WordDelay: 30 * time.Millisecond})
	c, _ := newRunsClient(t, f, nil)
	_, err := c.Complete(context.Background(), runRequest(agenttest.InputFail+" provider down", "hr-f-0"), Events{})
	var re *RunError
	if !errors.As(err, &re) || re.Status != "failed" || re.Message != "provider down" || !errors.Is(err, ErrRejected) {
		t.Fatalf("failed run: %v", err)
	}

	// Hermes restarts while the run executes: it reads as interrupted, and
	// its key replays the interrupted run.
	req := runRequest("p q r s t u", "hr-i-0")
	run := detach(t, c, req)
	f.Restart()
	for _, link := range []*Run{run, nil} {
		req.Run = link
		_, err = c.Complete(context.Background(), req, Events{})
		if !errors.As(err, &re) || re.Status != "interrupted" {
			t.Fatalf("interrupted run (link %v): %v", link != nil, err)
		}
	}
	if n := f.Executions("hr-i-0"); n != 1 {
		t.Fatalf("%d executions", n)
	}

	// The same key with another body is a conflict.
	_, err = c.Complete(context.Background(), runRequest("something else", "hr-i-0"), Events{})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 409 || !errors.Is(err, ErrRejected) {
		t.Fatalf("conflict: %v", err)
	}
}

// Without an approval handler a run's approval request is denied at once.
func TestRunsApprovalDeniedByDefault(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{})
	c, _ := newRunsClient(t, f, nil)
	out, err := c.Complete(context.Background(), runRequest(agenttest.InputApprove+" rm -rf /tmp/x", "hr-p-0"), Events{})
	if err != nil || out != "run: denied rm -rf /tmp/x" {
		t.Fatalf("%q %v", out, err)
	}
	if a := f.Approvals(); len(a) != 1 || a[0].Choice != "deny" || a[0].Status != 200 {
		t.Fatalf("approvals %+v", a)
	}
}

// An event stream that stays open with keepalives only while its run ends
// (an older server handed herald the buffer of a subscriber that had gone):
// herald notices from the run's status and returns the output.
func TestRunsSilentStream(t *testing.T) {
	var mu sync.Mutex
	statusAsked := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/capabilities", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"features":{"run_submission":true,"run_status":true,"run_events_sse":true,"run_stop":true}}`)
	})
	mux.HandleFunc("POST /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"run_id":"run_1","status":"started"}`)
	})
	mux.HandleFunc("GET /v1/runs/run_1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		statusAsked++
		n := statusAsked
		mu.Unlock()
		st := "running"
		if n >= 2 {
			st = "completed"
		}
		fmt.Fprintf(w, `{"run_id":"run_1","status":%q,"output":"the output"}`, st)
	})
	mux.HandleFunc("GET /v1/runs/run_1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := newRunsClient(t, nil, func(a *config.Agent) { a.URL, a.TotalTimeout = srv.URL, 20*time.Second })
	out, err := c.Complete(context.Background(), runRequest("hi", "hr-q-0"), Events{})
	if err != nil || out != "the output" {
		t.Fatalf("%q %v", out, err)
	}
}

// With an approval handler the run waits for the caller's answer; the
// handler hears of the request once, and of its resolution.
func TestRunsApprovalHandler(t *testing.T) {
	f := agenttest.NewRuns(t, agenttest.RunsOptions{})
	c, _ := newRunsClient(t, f, nil)
	var mu sync.Mutex
	var got []Approval
	answered := make(chan error, 1)
	ev := Events{Approval: func(a Approval) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
		if !a.Resolved {
			go func() { answered <- c.Approve(context.Background(), a.RunID, a.RequestID, "once") }()
		}
	}}
	out, err := c.Complete(context.Background(), runRequest(agenttest.InputApprove+" rm -rf /tmp/x", "hr-h-0"), ev)
	if err != nil || out != "run: approved rm -rf /tmp/x" {
		t.Fatalf("%q %v", out, err)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Tool != "terminal" || got[0].Command != "rm -rf /tmp/x" || got[0].RequestID == "" || got[0].Resolved ||
		!got[1].Resolved || got[1].RequestID != got[0].RequestID {
		t.Fatalf("approval events %+v", got)
	}
	// Answering again: nothing is pending.
	err = c.Approve(context.Background(), got[0].RunID, got[0].RequestID, "once")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 409 {
		t.Fatalf("second answer: %v", err)
	}
	if err := c.Approve(context.Background(), got[0].RunID, "", "maybe"); !errors.As(err, &he) || he.Status != 400 {
		t.Fatalf("invalid choice: %v", err)
	}
}
