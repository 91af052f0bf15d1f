// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Modes of kind hermes (Mode).
const (
	ModeRuns            = "runs"
	ModeChatCompletions = "chat_completions"
)

// Run statuses of the Hermes Runs API.
const (
	runCompleted   = "completed"
	runFailed      = "failed"
	runCancelled   = "cancelled"
	runInterrupted = "interrupted"
	runWaiting     = "waiting_for_approval"
)

// runsFeatures are the capabilities the runs backend needs.
var runsFeatures = []string{"run_submission", "run_status", "run_events_sse", "run_stop"}

// RunError is a run that ended without a reply: failed, cancelled (stopped
// by someone) or interrupted (Hermes restarted while it executed). Running
// the turn again under the same Idempotency-Key returns the same ended run,
// so it unwraps to ErrRejected: the user is told, the turn is not retried.
type RunError struct {
	RunID   string
	Status  string
	Message string
}

func (e *RunError) Error() string {
	s := fmt.Sprintf("run %s %s", e.RunID, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *RunError) Unwrap() error { return ErrRejected }

// MemoryScope turns a conversation key into an X-Hermes-Session-Key value:
// the key itself when it is at most 256 bytes without control characters
// (what Hermes accepts), else "herald-" and the SHA-256 of the key in hex,
// which is as stable.
func MemoryScope(key string) string {
	ok := len(key) <= 256 && strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0
	if ok {
		return key
	}
	h := sha256.Sum256([]byte(key))
	return "herald-" + hex.EncodeToString(h[:])
}

// hermesMode decides once per process, with GET /v1/capabilities, whether
// kind hermes uses the Runs API.
type hermesMode struct {
	force string // agent.hermes_api: auto, runs, chat_completions

	mu      sync.Mutex
	decided bool
	runs    bool
	note    string // why chat completions, or which optional feature is missing
}

// Mode reports how kind hermes runs turns: ModeRuns, ModeChatCompletions or
// "" before the first turn asked the backend; note says why the backend
// falls back to chat completions (or which optional feature it lacks).
// Other kinds report "".
func (c *client) Mode() (mode, note string) {
	if !c.hermes {
		return "", ""
	}
	c.mode.mu.Lock()
	defer c.mode.mu.Unlock()
	if !c.mode.decided {
		return "", ""
	}
	if c.mode.runs {
		return ModeRuns, c.mode.note
	}
	return ModeChatCompletions, c.mode.note
}

// useRuns returns whether this turn goes through the Runs API, asking the
// backend's capabilities the first time. A backend that cannot be reached
// is an ErrUnavailable error and is asked again at the next turn.
func (c *client) useRuns(ctx context.Context) (bool, error) {
	m := &c.mode
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.decided {
		return m.runs, nil
	}
	switch m.force {
	case ModeRuns:
		m.decided, m.runs, m.note = true, true, "forced by agent.hermes_api"
		return true, nil
	case ModeChatCompletions:
		m.decided, m.runs, m.note = true, false, "forced by agent.hermes_api"
		return false, nil
	}
	var caps struct {
		Features map[string]bool `json:"features"`
	}
	status, err := c.getJSON(ctx, "/v1/capabilities", &caps)
	switch {
	case err != nil && status == 0:
		return false, err
	case status == http.StatusNotFound:
		m.note = "GET /v1/capabilities answered 404: this Hermes has no Runs API"
	case err != nil:
		return false, err
	default:
		var missing []string
		for _, f := range runsFeatures {
			if !caps.Features[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			m.note = "the backend's capabilities lack " + strings.Join(missing, ", ")
		} else {
			m.runs = true
			if !caps.Features["run_approval"] {
				m.note = "the backend's capabilities lack run_approval: approvals cannot be answered"
			}
		}
	}
	m.decided = true
	if m.runs {
		c.log.WithField("note", m.note).Info("agent: kind hermes uses the Runs API: turns survive restarts")
	} else {
		c.log.Warnf("agent: kind hermes falls back to chat completions (%s): a restart during a turn runs the turn again", m.note)
	}
	return m.runs, nil
}

// runsURL is the base URL plus path.
func (c *client) runsURL(path string) string { return c.base + path }

// newRequest builds a request to the backend with the common headers.
func (c *client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.runsURL(path), rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "herald")
	if !c.key.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.key.Reveal())
	}
	return req, nil
}

// getJSON GETs path and decodes a 2xx answer into v. status is the HTTP
// status (0 if none arrived); err is an *HTTPError for other statuses.
func (c *client) getJSON(ctx context.Context, path string, v any) (status int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*c.connect)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, c.httpError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBytes+1))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: reading %s: %w", ErrUnavailable, path, err)
	}
	if len(b) > maxJSONBytes {
		return resp.StatusCode, fmt.Errorf("%w: %s answer larger than %d bytes", ErrProtocol, path, maxJSONBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%w: %s: %w", ErrProtocol, path, err)
	}
	return resp.StatusCode, nil
}

// runBody is the POST /v1/runs body herald sends.
type runBody struct {
	Input     string `json:"input"`
	SessionID string `json:"session_id,omitempty"`
	Model     string `json:"model,omitempty"`
}

// runStatus is the part of GET /v1/runs/{id} herald reads.
type runStatus struct {
	RunID    string          `json:"run_id"`
	Status   string          `json:"status"`
	Output   string          `json:"output"`
	Error    json.RawMessage `json:"error"`
	Approval json.RawMessage `json:"approval"`
}

func (s *runStatus) terminal() bool {
	switch s.Status {
	case runCompleted, runFailed, runCancelled, runInterrupted:
		return true
	}
	return false
}

// completeRun runs one turn as a Hermes run: it creates the run (or finds
// the one req.Run names), reports it through ev.RunStarted, follows its
// events (or polls its status when the event buffer is gone) and returns
// its output. When ctx ends it detaches, and stops the run only if the
// cause is ErrStopRequested.
func (c *client) completeRun(ctx context.Context, req Request, ev Events) (string, error) {
	if req.IdempotencyKey == "" {
		return "", fmt.Errorf("agent: %w: the Runs API needs an idempotency key to re-attach", ErrRejected)
	}
	if len(req.IdempotencyKey) > 255 || strings.IndexFunc(req.IdempotencyKey, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
		return "", fmt.Errorf("agent: %w: idempotency key must be 1 to 255 visible ASCII characters", ErrRejected)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, c.total, &TimeoutError{Which: "total", After: c.total})
	defer cancel()
	log := c.log.WithFields(logrus.Fields{"session": req.SessionID, "idempotency_key": req.IdempotencyKey})
	t := &runTurn{c: c, req: req, ev: ev, log: log}
	if req.Run != nil {
		t.run = *req.Run
	}
	reply, err := t.do(tctx)
	if err == nil {
		return reply, nil
	}
	if ctx.Err() != nil || tctx.Err() != nil {
		stop := errors.Is(context.Cause(ctx), ErrStopRequested) || (ctx.Err() == nil && tctx.Err() != nil)
		if stop && t.run.ID != "" {
			t.stop()
		} else if t.run.ID != "" {
			log.WithField("run", t.run.ID).Info("agent: detached from the run; it goes on executing and the next instance re-attaches")
		}
		if ctx.Err() != nil {
			return "", wrapCtx(ctx)
		}
		return "", fmt.Errorf("agent: %w", context.Cause(tctx))
	}
	return "", fmt.Errorf("agent: %w", err)
}

// runTurn is one turn carried by a run.
type runTurn struct {
	c   *client
	req Request
	ev  Events
	log *logrus.Entry
	run Run

	streamed strings.Builder // message.delta text given to ev.Delta
	lastID   string          // id of the last event read (resumable streams)
	asked    map[string]bool // approval requests handled
	done     map[string]bool // approval requests reported resolved
}

func (t *runTurn) do(ctx context.Context) (string, error) {
	recreated := false
	if t.run.ID != "" {
		// Re-attach to the run an earlier instance started.
		st, status, err := t.status(ctx)
		switch {
		case status == http.StatusNotFound:
			t.log.WithField("run", t.run.ID).Warn("agent: the backend no longer knows the run; creating it again under the same idempotency key")
			recreated = true
			if err := t.create(ctx); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case st.terminal():
			return t.ended(st)
		default:
			t.log.WithFields(logrus.Fields{"run": t.run.ID, "status": st.Status}).Info("agent: re-attaching to the run")
			t.waiting(ctx, st)
		}
	} else if err := t.create(ctx); err != nil {
		return "", err
	}
	for gone := 0; ; gone++ {
		out, err := t.follow(ctx)
		if !errors.Is(err, errRunGone) {
			return out, err
		}
		// The run disappeared while herald followed it (evicted): create it
		// again under the same key; at most once more.
		if gone > 0 || recreated {
			return "", fmt.Errorf("%w: run %s disappeared from the backend", ErrUnavailable, t.run.ID)
		}
		recreated = true
		if err := t.create(ctx); err != nil {
			return "", err
		}
	}
}

// errRunGone: the backend answered 404 for the run's status.
var errRunGone = errors.New("run not found")

// endedCause ends a stream whose run the status shows ended.
type endedCause struct{ st runStatus }

func (e *endedCause) Error() string { return "run " + e.st.Status }

// create POSTs the run (the stored body if there is one), retrying, with
// the same Idempotency-Key, connection errors, 429 and 5xx: the key makes
// the POST safe to repeat.
func (t *runTurn) create(ctx context.Context) error {
	c := t.c
	body := t.run.Body
	if len(body) == 0 {
		rb := runBody{Input: lastUser(t.req.Messages), SessionID: t.req.SessionID}
		if c.model != "" && c.model != "hermes-agent" {
			rb.Model = c.model
		}
		if rb.Input == "" {
			return fmt.Errorf("%w: no user message", ErrRejected)
		}
		var err error
		if body, err = json.Marshal(rb); err != nil {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	for attempt := 1; ; attempt++ {
		id, replayed, err := t.post(ctx, body)
		if err == nil {
			t.run = Run{ID: id, Body: body}
			t.log.WithFields(logrus.Fields{"run": id, "replayed": replayed}).Debug("agent: run accepted")
			if t.ev.RunStarted != nil {
				if err := t.ev.RunStarted(t.run); err != nil {
					t.log.WithError(err).Warn("agent: cannot record the run; after a restart its idempotency key still finds it")
				}
			}
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if attempt >= c.maxAttempts || !(errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)) {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return err
		}
		wait := c.backoff(attempt, err)
		t.log.WithError(err).Warnf("agent: creating the run failed (attempt %d of %d); retrying in %v", attempt, c.maxAttempts, wait.Round(time.Millisecond))
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (t *runTurn) post(ctx context.Context, body []byte) (id string, replayed bool, err error) {
	c := t.c
	pctx, cancel := context.WithTimeout(ctx, 2*c.connect)
	defer cancel()
	req, err := c.newRequest(pctx, http.MethodPost, "/v1/runs", body)
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", t.req.IdempotencyKey)
	if t.req.SessionKey != "" {
		req.Header.Set("X-Hermes-Session-Key", MemoryScope(t.req.SessionKey))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("%w: POST /v1/runs: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", false, c.httpError(resp)
	}
	var a struct {
		RunID    string `json:"run_id"`
		Replayed bool   `json:"replayed"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&a); err != nil || a.RunID == "" {
		return "", false, fmt.Errorf("%w: POST /v1/runs answered without a run_id", ErrProtocol)
	}
	return a.RunID, a.Replayed || resp.Header.Get("Idempotency-Replayed") == "true", nil
}

// status GETs the run's status.
func (t *runTurn) status(ctx context.Context) (runStatus, int, error) {
	var st runStatus
	code, err := t.c.getJSON(ctx, "/v1/runs/"+t.run.ID, &st)
	return st, code, err
}

// ended turns a terminal status into the turn's result.
func (t *runTurn) ended(st runStatus) (string, error) {
	if st.Status == runCompleted {
		t.finishDeltas(st.Output)
		return st.Output, nil
	}
	msg := ""
	if len(st.Error) > 0 && string(st.Error) != "null" {
		msg = sanitize(errorObject(st.Error), t.c.key.Reveal())
	}
	return "", &RunError{RunID: t.run.ID, Status: st.Status, Message: msg}
}

// finishDeltas gives ev.Delta what of the output it has not seen, so the
// deltas add up to the reply when herald attached late (after a restart,
// or after polling).
func (t *runTurn) finishDeltas(out string) {
	seen := t.streamed.String()
	if strings.HasPrefix(out, seen) && len(out) > len(seen) {
		t.ev.delta(out[len(seen):])
	}
}

// follow reads the run's events until it ends. When there is no stream
// (404: the buffer expired, or an older server dropped it when an earlier
// subscriber left) or it broke without a way to resume, it polls the
// status every pollInterval instead.
func (t *runTurn) follow(ctx context.Context) (string, error) {
	polling := false
	for {
		if polling {
			if err := sleepCtx(ctx, t.c.pollInterval); err != nil {
				return "", err
			}
		} else {
			out, done, err := t.stream(ctx)
			if done {
				return out, err
			}
			if ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			var he *HTTPError
			gone := errors.As(err, &he) && he.Status == http.StatusNotFound
			switch {
			case t.lastID == "" || gone:
				// Not resumable: poll from now on.
				polling = true
				t.log.WithError(err).WithField("run", t.run.ID).Debug("agent: no event stream for the run; polling its status")
			case err != nil:
				// A resumable stream broke: resume it after a pause.
				if err := sleepCtx(ctx, t.c.pollInterval); err != nil {
					return "", err
				}
			}
		}
		st, status, err := t.status(ctx)
		switch {
		case status == http.StatusNotFound:
			return "", errRunGone
		case err != nil && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)):
			// The backend is unreachable for now; the run goes on there.
			t.log.WithError(err).WithField("run", t.run.ID).Debug("agent: cannot read the run's status; trying again")
			polling = true
		case err != nil:
			return "", err
		case st.terminal():
			return t.ended(st)
		default:
			t.waiting(ctx, st)
		}
	}
}

// stream reads the event stream once. done reports a final result (out,
// err); otherwise err says why the stream is not usable and the caller
// polls.
func (t *runTurn) stream(ctx context.Context) (out string, done bool, err error) {
	c := t.c
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := c.newRequest(sctx, http.MethodGet, "/v1/runs/"+t.run.ID+"/events", nil)
	if err != nil {
		return "", true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if t.lastID != "" {
		req.Header.Set("Last-Event-ID", t.lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", true, c.httpError(resp)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", false, c.httpError(resp)
	}
	// The idle timeout applies between any two bytes (Hermes sends a
	// keepalive comment every 30 s); when it fires, herald polls instead.
	idle := time.AfterFunc(c.idle, func() { cancel(&TimeoutError{Which: "idle", After: c.idle}) })
	defer idle.Stop()
	// A stream can stay open with nothing but keepalives while its run has
	// ended: an older server hands a new subscriber the buffer of a
	// subscriber that has gone but not yet noticed (a herald that died
	// moments ago), then drops that buffer when it notices. So after
	// statusEvery without an event herald asks the run's status, without
	// leaving the stream.
	var (
		checks  sync.WaitGroup
		quietMu sync.Mutex // guards quiet and stopped
		quiet   *time.Timer
		stopped bool
	)
	quietMu.Lock()
	quiet = time.AfterFunc(c.statusEvery, func() {
		quietMu.Lock()
		if stopped {
			quietMu.Unlock()
			return
		}
		checks.Add(1)
		quietMu.Unlock()
		defer checks.Done()
		st, code, err := t.status(sctx)
		switch {
		case sctx.Err() != nil:
		case code == http.StatusNotFound:
			cancel(errRunGone)
		case err == nil && st.terminal():
			cancel(&endedCause{st})
		default:
			quietMu.Lock()
			if !stopped {
				quiet.Reset(c.statusEvery)
			}
			quietMu.Unlock()
		}
	})
	quietMu.Unlock()
	defer func() {
		cancel(nil)
		quietMu.Lock()
		stopped = true
		quiet.Stop()
		quietMu.Unlock()
		checks.Wait() // no status check outlives the stream
	}()
	sr := newSSEReader(&activityReader{r: resp.Body, t: idle, d: c.idle}, maxEventBytes)
	for {
		e, err := sr.next()
		if err != nil {
			var ended *endedCause
			switch cause := context.Cause(sctx); {
			case ctx.Err() != nil:
			case errors.Is(cause, errRunGone):
				return "", true, errRunGone
			case errors.As(cause, &ended):
				out, err := t.ended(ended.st)
				return out, true, err
			case sctx.Err() != nil:
				return "", false, cause
			}
			if err == io.EOF {
				return "", false, nil // closed without a terminal event: ask the status
			}
			return "", false, fmt.Errorf("%w: reading events: %w", ErrUnavailable, err)
		}
		if e.Comment {
			t.ev.progress(ProgressKeepalive)
			continue
		}
		if e.ID != "" {
			t.lastID = e.ID
		}
		quietMu.Lock()
		quiet.Reset(c.statusEvery)
		quietMu.Unlock()
		var p struct {
			Event    string          `json:"event"`
			Delta    string          `json:"delta"`
			Output   string          `json:"output"`
			Error    json.RawMessage `json:"error"`
			Tool     string          `json:"tool"`
			Command  string          `json:"command"`
			Request  string          `json:"request_id"`
			Choices  []string        `json:"choices"`
			Describe string          `json:"description"`
		}
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return "", true, fmt.Errorf("%w: bad run event: %w", ErrProtocol, err)
		}
		name := p.Event
		if name == "" {
			name = e.Type
		}
		switch name {
		case "message.delta":
			if t.streamed.Len()+len(p.Delta) > maxReplyBytes {
				return "", true, fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, maxReplyBytes)
			}
			t.streamed.WriteString(p.Delta)
			t.ev.delta(p.Delta)
		case "tool.started", "tool.completed", "reasoning.available", "subagent.start", "subagent.complete":
			t.ev.progress(ProgressTool)
		case "approval.request":
			t.ev.progress(ProgressApproval)
			t.approval(ctx, Approval{RequestID: p.Request, Tool: p.Tool, Command: p.Command, Description: p.Describe, Choices: p.Choices})
		case "approval.responded":
			t.resolved(p.Request)
		case "run.completed":
			t.finishDeltas(p.Output)
			return p.Output, true, nil
		case "run.failed", "run.cancelled", "run.interrupted":
			out, err := t.ended(runStatus{Status: strings.TrimPrefix(name, "run."), Error: p.Error})
			return out, true, err
		}
	}
}

// stop asks the backend to stop the run, bounded by twice the connect
// timeout, on a context of its own (the turn's has ended).
func (t *runTurn) stop() {
	c := t.c
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.connect)
	defer cancel()
	log := t.log.WithField("run", t.run.ID)
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/runs/"+t.run.ID+"/stop", []byte("{}"))
	if err != nil {
		log.WithError(err).Warn("agent: cannot stop the run")
		return
	}
	resp, err := c.http.Do(req)
	if err != nil {
		log.WithError(err).Warn("agent: cannot stop the run")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.WithError(c.httpError(resp)).Warn("agent: the backend refused to stop the run")
		return
	}
	log.Info("agent: run stopped")
}

// ProgressApproval: the run waits for a human decision (Events.Progress).
const ProgressApproval = "approval"

// Approval is a run's request for a human decision on a tool call.
type Approval struct {
	RunID       string   `json:"-"`
	RequestID   string   `json:"request_id"`
	Tool        string   `json:"tool"`
	Command     string   `json:"command"`
	Description string   `json:"description"`
	Choices     []string `json:"choices"`
	// Resolved: the decision was recorded (approval.responded).
	Resolved bool `json:"-"`
}

// approval handles a pending approval request. With Events.Approval the
// caller asks the user; without, herald answers deny at once, which is also
// what Hermes does on chat completions.
func (t *runTurn) approval(ctx context.Context, a Approval) {
	a.RunID = t.run.ID
	if t.asked == nil {
		t.asked = map[string]bool{}
	}
	if t.asked[a.RequestID] {
		return
	}
	t.asked[a.RequestID] = true
	log := t.log.WithFields(logrus.Fields{"run": a.RunID, "tool": a.Tool, "request_id": a.RequestID})
	if t.ev.Approval != nil {
		log.Info("agent: the run waits for approval")
		t.ev.Approval(a)
		return
	}
	if err := t.c.Approve(ctx, a.RunID, a.RequestID, "deny"); err != nil {
		log.WithError(err).Warn("agent: cannot deny the run's approval request")
		return
	}
	log.Info("agent: denied the run's approval request (nobody to ask)")
}

// resolved reports an approval.responded event to the caller.
func (t *runTurn) resolved(requestID string) {
	if t.ev.Approval != nil && !t.done[requestID] {
		if t.done == nil {
			t.done = map[string]bool{}
		}
		t.done[requestID] = true
		t.ev.Approval(Approval{RunID: t.run.ID, RequestID: requestID, Resolved: true})
	}
}

// waiting reports the pending approval a status shows.
func (t *runTurn) waiting(ctx context.Context, st runStatus) {
	if st.Status != runWaiting || len(st.Approval) == 0 {
		return
	}
	var a Approval
	if json.Unmarshal(st.Approval, &a) == nil {
		t.approval(ctx, a)
	}
}

// Approve answers the pending approval of run runID: choice is once,
// session, always or deny; requestID may be empty.
func (c *client) Approve(ctx context.Context, runID, requestID, choice string) error {
	body := map[string]any{"choice": choice}
	if requestID != "" {
		body["request_id"] = requestID
	}
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, 2*c.connect)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/runs/"+runID+"/approval", b)
	if err != nil {
		return fmt.Errorf("agent: approval: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent: approval: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("agent: approval: %w", c.httpError(resp))
	}
	return nil
}
