// SPDX-License-Identifier: Apache-2.0

package agenttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Run statuses, as the Hermes API server reports them.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusWaiting   = "waiting_for_approval"
	StatusStopping  = "stopping"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusInterrupted is what a run that was executing when the server
	// restarted reads as afterwards.
	StatusInterrupted = "interrupted"
)

// Input prefixes that change what a fake run does.
const (
	// InputApprove makes the run ask for approval of the rest of the input
	// (as a shell command) before answering: "run: approved <command>"
	// after "once", "session" or "always", "run: denied <command>" after
	// "deny".
	InputApprove = "approve:"
	// InputFail makes the run fail with the rest of the input as its error.
	InputFail = "fail:"
)

// RunsOptions configure NewRuns.
type RunsOptions struct {
	// Listen opens the listener (a sandbox's Listen, say); net.Listen by
	// default. The address is always 127.0.0.1:0.
	Listen func(network, address string) (net.Listener, error)
	// Key is the bearer key every request must carry; "" accepts any.
	Key string
	// StateFile holds the idempotency table, which survives Restart as the
	// server's SQLite table survives a restart of Hermes. Default: a file
	// in tb.TempDir().
	StateFile string
	// BufferTTL is how long an event buffer nobody is subscribed to is
	// kept. Hermes keeps it five minutes; tests shorten it.
	BufferTTL time.Duration
	// Resumable selects the newer events stream: events carry sequence
	// ids ("id: n"), a subscriber resumes after Last-Event-ID (or
	// ?last_seq=n), and a subscriber leaving does not drop the buffer.
	// Without it the stream behaves as the older servers do: the buffer is
	// dropped as soon as its subscriber disconnects, so the next GET of
	// the events answers 404.
	Resumable bool
	// Features replaces the "features" of /v1/capabilities; nil means
	// every chat completions and runs feature (run_approval included).
	Features map[string]bool
	// WordDelay is the pause before each word of a run's reply.
	WordDelay time.Duration
}

// RunRequest is one recorded POST /v1/runs.
type RunRequest struct {
	IdempotencyKey string
	SessionKey     string // X-Hermes-Session-Key
	Body           map[string]any
	Raw            []byte
	Status         int    // the answer's HTTP status
	RunID          string // the run it created or replayed ("" on error)
	Replayed       bool
}

// Runs is a fake Hermes API server speaking the Runs API: durable
// idempotency (a state file that survives Restart), runs that go on
// executing whatever their clients do, expiring event buffers, stop,
// approval, and eviction. It counts executions per Idempotency-Key so a
// test can assert that a turn ran once.
type Runs struct {
	// URL is the base URL, what agent.url takes.
	URL string

	opts RunsOptions
	srv  *httptest.Server

	mu         sync.Mutex
	changed    chan struct{}
	runs       map[string]*fakeRun // by run id; forgotten by Restart and Evict
	idem       map[string]idemRecord
	executions map[string]int // by Idempotency-Key ("" for none)
	chats      map[string]int // chat completions answered, by Idempotency-Key
	requests   []RunRequest
	stops      []string // run ids POSTed to /stop
	approvals  []Approval
	caps       int // GET /v1/capabilities answered
	nextID     int
	ctx        context.Context // ends at Restart and Close: runs stop executing
	cancel     context.CancelFunc
	closed     bool
}

// Approval is one recorded POST /v1/runs/{id}/approval.
type Approval struct {
	RunID, Choice, RequestID string
	Status                   int
}

// idemRecord is one row of the durable idempotency table.
type idemRecord struct {
	Fingerprint string         `json:"fingerprint"`
	RunID       string         `json:"run_id"`
	Status      map[string]any `json:"status"`
}

type runEvent struct {
	seq  int
	data map[string]any // nil: end of stream
}

type fakeRun struct {
	id, key, input, sessionID string
	status                    map[string]any
	cancel                    context.CancelFunc
	executing                 bool

	// Event transport.
	events     []runEvent // buffered, not yet consumed (older) or all (resumable)
	seq        int
	dropped    bool // buffer gone: GET events answers 404
	subscribed int
	since      time.Time // buffer creation, or last unsubscribe (resumable)
	notify     chan struct{}

	approval chan string // the pending approval's answer
	pending  map[string]any
	deltas   int // message.delta events produced
}

// NewRuns starts the fake and closes it when the test ends.
func NewRuns(tb testing.TB, o RunsOptions) *Runs {
	tb.Helper()
	if o.Listen == nil {
		o.Listen = net.Listen
	}
	if o.StateFile == "" {
		o.StateFile = filepath.Join(tb.TempDir(), "runs-idempotency.json")
	}
	if o.BufferTTL <= 0 {
		o.BufferTTL = 5 * time.Minute
	}
	ln, err := o.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("agenttest: listen: %v", err)
	}
	f := &Runs{opts: o, changed: make(chan struct{}), executions: map[string]int{}, chats: map[string]int{}}
	f.reset()
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	f.URL = f.srv.URL
	tb.Cleanup(f.Close)
	return f
}

// reset forgets every run in memory and reads the idempotency table, as a
// freshly started server does. Runs the table records as not finished read
// as interrupted: their executor died with the old process.
func (f *Runs) reset() {
	f.runs = map[string]*fakeRun{}
	f.idem = map[string]idemRecord{}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	b, err := os.ReadFile(f.opts.StateFile)
	if err == nil {
		_ = json.Unmarshal(b, &f.idem)
	}
	for k, r := range f.idem {
		if !terminal(str(r.Status["status"])) {
			r.Status["status"] = StatusInterrupted
			r.Status["error"] = "The gateway restarted before this run settled."
			r.Status["last_event"] = "run.interrupted"
			f.idem[k] = r
		}
	}
	f.saveLocked()
}

// Close stops the server and every run.
func (f *Runs) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.cancel()
	f.mu.Unlock()
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// Restart simulates a restart of Hermes: connections break, runs stop
// executing, everything in memory is forgotten; the idempotency table
// stays, and the runs it recorded as unfinished now read as interrupted.
func (f *Runs) Restart() {
	f.mu.Lock()
	f.cancel()
	f.mu.Unlock()
	f.srv.CloseClientConnections()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.notifyLocked()
}

// Evict forgets run id entirely, its idempotency record included, as
// happens once the retention time passed: GET answers 404 and the same
// Idempotency-Key creates a new run.
func (f *Runs) Evict(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.runs[id]; r != nil && r.cancel != nil {
		r.cancel()
	}
	delete(f.runs, id)
	for k, rec := range f.idem {
		if rec.RunID == id {
			delete(f.idem, k)
		}
	}
	f.saveLocked()
	f.notifyLocked()
}

// SetWordDelay changes the pause before each word of runs started later.
func (f *Runs) SetWordDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.WordDelay = d
}

// Executions returns how many runs were executed for Idempotency-Key key,
// chat completions answered under it included.
func (f *Runs) Executions(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.executions[key] + f.chats[key]
}

// TotalExecutions returns how many runs and chat completions were executed.
func (f *Runs) TotalExecutions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.executions {
		n += v
	}
	for _, v := range f.chats {
		n += v
	}
	return n
}

// ExecutionsByKey returns a copy of the execution counts per key.
func (f *Runs) ExecutionsByKey() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.executions {
		out[k] += v
	}
	for k, v := range f.chats {
		out[k] += v
	}
	return out
}

// ChatCompletions returns how many chat completions were answered.
func (f *Runs) ChatCompletions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.chats {
		n += v
	}
	return n
}

// RunRequests returns the recorded POST /v1/runs.
func (f *Runs) RunRequests() []RunRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]RunRequest(nil), f.requests...)
}

// Stops returns the run ids POSTed to /stop, in order.
func (f *Runs) Stops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stops...)
}

// Approvals returns the recorded approval answers.
func (f *Runs) Approvals() []Approval {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Approval(nil), f.approvals...)
}

// CapabilityRequests returns how often /v1/capabilities was asked.
func (f *Runs) CapabilityRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.caps
}

// Status returns the current status of run id ("" if unknown).
func (f *Runs) Status(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.statusLocked(id); st != nil {
		return str(st["status"])
	}
	return ""
}

// Deltas returns how many words run id has produced so far (0 if unknown).
func (f *Runs) Deltas(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.runs[id]; r != nil {
		return r.deltas
	}
	return 0
}

// Completed returns how many runs in memory completed.
func (f *Runs) Completed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.runs {
		if str(r.status["status"]) == StatusCompleted {
			n++
		}
	}
	return n
}

// Pending returns the ids of runs waiting for approval.
func (f *Runs) Pending() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, r := range f.runs {
		if r.pending != nil {
			out = append(out, id)
		}
	}
	return out
}

// Wait waits until cond (called with no lock held) holds, or ctx ends.
func (f *Runs) Wait(ctx context.Context, what string, cond func() bool) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond): // conditions on time (buffer expiry)
		case <-ctx.Done():
			return fmt.Errorf("agenttest: waiting for %s: %w", what, ctx.Err())
		}
	}
}

func (f *Runs) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Runs) saveLocked() {
	b, _ := json.Marshal(f.idem)
	tmp := f.opts.StateFile + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, f.opts.StateFile)
	}
}

func terminal(st string) bool {
	switch st {
	case StatusCompleted, StatusFailed, StatusCancelled, StatusInterrupted:
		return true
	}
	return false
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": code}})
}

func (f *Runs) serve(w http.ResponseWriter, r *http.Request) {
	if f.opts.Key != "" && r.Header.Get("Authorization") != "Bearer "+f.opts.Key {
		apiError(w, http.StatusUnauthorized, "invalid_api_key", "Invalid API key")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodGet && path == "/v1/capabilities":
		f.capabilities(w)
	case r.Method == http.MethodPost && path == "/v1/chat/completions":
		f.chat(w, r)
	case r.Method == http.MethodPost && path == "/v1/runs":
		f.create(w, r)
	case strings.HasPrefix(path, "/v1/runs/"):
		rest := strings.TrimPrefix(path, "/v1/runs/")
		id, action, _ := strings.Cut(rest, "/")
		switch {
		case r.Method == http.MethodGet && action == "":
			f.get(w, id)
		case r.Method == http.MethodGet && action == "events":
			f.events(w, r, id)
		case r.Method == http.MethodPost && action == "stop":
			f.stop(w, id)
		case r.Method == http.MethodPost && action == "approval":
			f.approve(w, r, id)
		default:
			apiError(w, http.StatusNotFound, "not_found", "not found")
		}
	default:
		apiError(w, http.StatusNotFound, "not_found", "not found")
	}
}

func (f *Runs) capabilities(w http.ResponseWriter) {
	f.mu.Lock()
	f.caps++
	feats := f.opts.Features
	f.notifyLocked()
	f.mu.Unlock()
	if feats == nil {
		feats = map[string]bool{
			"chat_completions": true, "chat_completions_streaming": true,
			"run_submission": true, "run_status": true, "run_events_sse": true, "run_stop": true, "run_approval": true,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "hermes.api_server.capabilities", "platform": "hermes-agent", "model": "hermes-agent",
		"auth":               map[string]any{"type": "bearer", "required": true},
		"features":           feats,
		"session_key_header": "X-Hermes-Session-Key",
	})
}

// chat answers a chat completion at once with JSON, "agent: " plus the
// last user message, counting it as an execution of its Idempotency-Key.
func (f *Runs) chat(w http.ResponseWriter, r *http.Request) {
	var body Body
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err := json.Unmarshal(raw, &body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_json", "Invalid JSON")
		return
	}
	f.mu.Lock()
	f.chats[r.Header.Get("Idempotency-Key")]++
	f.notifyLocked()
	f.mu.Unlock()
	last := Request{Body: body}.LastUser()
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-agenttest", "object": "chat.completion", "model": "hermes-agent",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": "agent: " + last}, "finish_reason": "stop"}},
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (f *Runs) create(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	rec := RunRequest{IdempotencyKey: strings.TrimSpace(r.Header.Get("Idempotency-Key")), SessionKey: r.Header.Get("X-Hermes-Session-Key"), Raw: raw}
	answer := func(status int, id string, replayed bool) {
		rec.Status, rec.RunID, rec.Replayed = status, id, replayed
		f.requests = append(f.requests, rec)
		f.notifyLocked()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if sk := rec.SessionKey; len(sk) > 256 || strings.ContainsAny(sk, "\r\n\x00") {
		answer(http.StatusBadRequest, "", false)
		apiError(w, http.StatusBadRequest, "invalid_session_key", "X-Hermes-Session-Key is invalid")
		return
	}
	if k := rec.IdempotencyKey; len(k) > 255 || strings.IndexFunc(k, func(c rune) bool { return c < 33 || c > 126 }) >= 0 {
		answer(http.StatusBadRequest, "", false)
		apiError(w, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters")
		return
	}
	if err := json.Unmarshal(raw, &rec.Body); err != nil || rec.Body == nil {
		answer(http.StatusBadRequest, "", false)
		apiError(w, http.StatusBadRequest, "", "Invalid JSON")
		return
	}
	input, _ := rec.Body["input"].(string)
	if input == "" {
		answer(http.StatusBadRequest, "", false)
		apiError(w, http.StatusBadRequest, "", "Missing 'input' field")
		return
	}
	// The fingerprint covers the body (canonical JSON: Go sorts map keys)
	// and the session key, as the server's does.
	canon, _ := json.Marshal(map[string]any{"body": rec.Body, "gateway_session_key": rec.SessionKey})
	sum := sha256.Sum256(canon)
	fp := hex.EncodeToString(sum[:])
	if rec.IdempotencyKey != "" {
		if old, ok := f.idem[rec.IdempotencyKey]; ok {
			if old.Fingerprint != fp {
				answer(http.StatusConflict, "", false)
				apiError(w, http.StatusConflict, "idempotency_key_conflict", "Idempotency-Key was already used with a different request payload")
				return
			}
			st := f.statusLocked(old.RunID)
			answer(http.StatusAccepted, old.RunID, true)
			w.Header().Set("Idempotency-Replayed", "true")
			writeJSON(w, http.StatusAccepted, map[string]any{"run_id": old.RunID, "status": str(st["status"]), "replayed": true})
			return
		}
	}
	f.nextID++
	id := fmt.Sprintf("run_%04d%x", f.nextID, time.Now().UnixNano()&0xffffff)
	session, _ := rec.Body["session_id"].(string)
	if session == "" {
		session = id
	}
	now := float64(time.Now().UnixMilli()) / 1000
	ctx, cancel := context.WithCancel(f.ctx)
	run := &fakeRun{
		id: id, key: rec.IdempotencyKey, input: input, sessionID: session, cancel: cancel, executing: true,
		status: map[string]any{"object": "hermes.run", "run_id": id, "status": StatusQueued, "session_id": session, "model": "hermes-agent", "created_at": now, "updated_at": now},
		since:  time.Now(), notify: make(chan struct{}),
	}
	f.runs[id] = run
	if rec.IdempotencyKey != "" {
		f.idem[rec.IdempotencyKey] = idemRecord{Fingerprint: fp, RunID: id, Status: copyMap(run.status)}
		f.saveLocked()
	}
	f.executions[rec.IdempotencyKey]++
	answer(http.StatusAccepted, id, false)
	go f.execute(ctx, run)
	writeJSON(w, http.StatusAccepted, map[string]any{"run_id": id, "status": "started", "replayed": false})
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// statusLocked returns the run's status from memory or, as the server
// hydrates it, from the idempotency table.
func (f *Runs) statusLocked(id string) map[string]any {
	if r := f.runs[id]; r != nil {
		return r.status
	}
	for _, rec := range f.idem {
		if rec.RunID == id {
			return rec.Status
		}
	}
	return nil
}

// setStatusLocked updates the run's status and its durable record.
func (f *Runs) setStatusLocked(r *fakeRun, status string, fields map[string]any) {
	r.status["status"] = status
	r.status["updated_at"] = float64(time.Now().UnixMilli()) / 1000
	if status != StatusWaiting {
		delete(r.status, "approval")
	}
	for k, v := range fields {
		r.status[k] = v
	}
	if rec, ok := f.idem[r.key]; ok && r.key != "" && rec.RunID == r.id {
		rec.Status = copyMap(r.status)
		f.idem[r.key] = rec
		f.saveLocked()
	}
	f.notifyLocked()
}

// pushLocked appends an event to the run's buffer (if it still has one).
func (f *Runs) pushLocked(r *fakeRun, name string, fields map[string]any) {
	if r.dropped {
		return
	}
	r.seq++
	var data map[string]any
	if name != "" {
		data = map[string]any{"event": name, "run_id": r.id, "timestamp": float64(time.Now().UnixMilli()) / 1000}
		for k, v := range fields {
			data[k] = v
		}
	}
	r.events = append(r.events, runEvent{seq: r.seq, data: data})
	close(r.notify)
	r.notify = make(chan struct{})
}

func (f *Runs) execute(ctx context.Context, r *fakeRun) {
	f.mu.Lock()
	f.setStatusLocked(r, StatusRunning, nil)
	delay := f.opts.WordDelay
	f.mu.Unlock()
	finish := func(status string, fields map[string]any) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.runs[r.id] != r {
			return // forgotten by Restart or Evict
		}
		r.executing = false
		r.pending = nil
		f.setStatusLocked(r, status, fields)
		f.pushLocked(r, "run."+status, fields)
		f.pushLocked(r, "", nil) // end of stream
	}
	cancelled := func() {
		f.mu.Lock()
		stopping := f.runs[r.id] == r && str(r.status["status"]) == StatusStopping
		f.mu.Unlock()
		if stopping {
			finish(StatusCancelled, nil)
		}
		// Otherwise the server is gone (Restart, Close): nothing settles.
	}
	reply := "run: " + r.input
	switch {
	case strings.HasPrefix(r.input, InputFail):
		finish(StatusFailed, map[string]any{"error": strings.TrimSpace(strings.TrimPrefix(r.input, InputFail))})
		return
	case strings.HasPrefix(r.input, InputApprove):
		cmd := strings.TrimSpace(strings.TrimPrefix(r.input, InputApprove))
		f.mu.Lock()
		reqID := "apr_" + r.id
		ev := map[string]any{
			"command": cmd, "description": "dangerous command", "pattern_key": "shell", "tool": "terminal",
			"request_id": reqID, "choices": []string{"once", "session", "always", "deny"},
		}
		r.approval = make(chan string, 1)
		r.pending = ev
		f.pushLocked(r, "tool.started", map[string]any{"tool": "terminal", "preview": cmd})
		f.setStatusLocked(r, StatusWaiting, map[string]any{"last_event": "approval.request", "approval": ev})
		f.pushLocked(r, "approval.request", ev)
		ch := r.approval
		f.mu.Unlock()
		select {
		case choice := <-ch:
			if choice == "deny" {
				reply = "run: denied " + cmd
			} else {
				reply = "run: approved " + cmd
			}
		case <-ctx.Done():
			cancelled()
			return
		}
	}
	for _, w := range words(reply) {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				cancelled()
				return
			}
		}
		f.mu.Lock()
		if ctx.Err() == nil {
			r.deltas++
			f.pushLocked(r, "message.delta", map[string]any{"delta": w})
			f.notifyLocked()
		}
		f.mu.Unlock()
	}
	if ctx.Err() != nil {
		cancelled()
		return
	}
	finish(StatusCompleted, map[string]any{"output": reply, "usage": map[string]any{"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}})
}

func (f *Runs) get(w http.ResponseWriter, id string) {
	f.mu.Lock()
	st := f.statusLocked(id)
	var out map[string]any
	if st != nil {
		out = copyMap(st)
	}
	f.mu.Unlock()
	if out == nil {
		apiError(w, http.StatusNotFound, "run_not_found", "Run not found: "+id)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// expireLocked drops the buffer of a run nobody has subscribed to for
// BufferTTL. The run itself is not affected.
func (f *Runs) expireLocked(r *fakeRun) {
	if !r.dropped && r.subscribed == 0 && time.Since(r.since) > f.opts.BufferTTL {
		r.dropped = true
		r.events = nil
	}
}

// BufferExpired reports whether run id's event buffer is gone.
func (f *Runs) BufferExpired(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[id]
	if r == nil {
		return true
	}
	f.expireLocked(r)
	return r.dropped
}

func (f *Runs) events(w http.ResponseWriter, req *http.Request, id string) {
	f.mu.Lock()
	r := f.runs[id]
	if r != nil {
		f.expireLocked(r)
	}
	if r == nil || r.dropped {
		f.mu.Unlock()
		apiError(w, http.StatusNotFound, "run_not_found", "Run not found: "+id)
		return
	}
	after := 0
	if f.opts.Resumable {
		v := req.Header.Get("Last-Event-ID")
		if v == "" {
			v = req.URL.Query().Get("last_seq")
		}
		after, _ = strconv.Atoi(v)
	}
	r.subscribed++
	f.notifyLocked()
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		r.subscribed--
		r.since = time.Now()
		if !f.opts.Resumable {
			// Older servers drop the transport when its subscriber leaves.
			r.dropped = true
			r.events = nil
		}
		f.notifyLocked()
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	sent := after
	for {
		f.mu.Lock()
		var batch []runEvent
		for _, e := range r.events {
			if e.seq > sent {
				batch = append(batch, e)
			}
		}
		if !f.opts.Resumable {
			r.events = nil // consumed
		}
		notify := r.notify
		f.mu.Unlock()
		for _, e := range batch {
			sent = e.seq
			if e.data == nil {
				_, _ = io.WriteString(w, ": stream closed\n\n")
				if fl != nil {
					fl.Flush()
				}
				return
			}
			b, _ := json.Marshal(e.data)
			frame := ""
			if f.opts.Resumable {
				frame = fmt.Sprintf("id: %d\n", e.seq)
			}
			frame += fmt.Sprintf("event: %s\ndata: %s\n\n", str(e.data["event"]), b)
			if _, err := io.WriteString(w, frame); err != nil {
				return
			}
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-notify:
		case <-req.Context().Done():
			return
		case <-time.After(5 * time.Second):
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
		}
	}
}

func (f *Runs) stop(w http.ResponseWriter, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, id)
	f.notifyLocked()
	st := f.statusLocked(id)
	if st == nil {
		apiError(w, http.StatusNotFound, "run_not_found", "Run not found: "+id)
		return
	}
	if terminal(str(st["status"])) {
		writeJSON(w, http.StatusOK, copyMap(st))
		return
	}
	r := f.runs[id]
	if r == nil || !r.executing {
		apiError(w, http.StatusConflict, "run_not_active", "Run is not active in this gateway process: "+id)
		return
	}
	f.setStatusLocked(r, StatusStopping, map[string]any{"last_event": "run.stopping"})
	r.cancel()
	writeJSON(w, http.StatusOK, map[string]any{"run_id": id, "status": "stopping"})
}

func (f *Runs) approve(w http.ResponseWriter, req *http.Request, id string) {
	var body struct {
		Choice    string  `json:"choice"`
		RequestID *string `json:"request_id"`
		All       bool    `json:"all"`
	}
	raw, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := Approval{RunID: id}
	record := func(status int) {
		rec.Status = status
		f.approvals = append(f.approvals, rec)
		f.notifyLocked()
	}
	if f.statusLocked(id) == nil {
		record(http.StatusNotFound)
		apiError(w, http.StatusNotFound, "run_not_found", "Run not found: "+id)
		return
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		record(http.StatusBadRequest)
		apiError(w, http.StatusBadRequest, "", "Invalid JSON")
		return
	}
	choice := strings.ToLower(strings.TrimSpace(body.Choice))
	switch choice {
	case "approve", "approved", "allow":
		choice = "once"
	}
	rec.Choice = choice
	if body.RequestID != nil {
		rec.RequestID = *body.RequestID
	}
	switch choice {
	case "once", "session", "always", "deny":
	default:
		record(http.StatusBadRequest)
		apiError(w, http.StatusBadRequest, "invalid_approval_choice", "Invalid approval choice; expected one of: always, deny, once, session")
		return
	}
	r := f.runs[id]
	if r == nil || !r.executing {
		record(http.StatusConflict)
		apiError(w, http.StatusConflict, "approval_not_active", "Run has no active approval session: "+id)
		return
	}
	if r.pending == nil || (body.RequestID != nil && *body.RequestID != str(r.pending["request_id"])) {
		record(http.StatusConflict)
		apiError(w, http.StatusConflict, "approval_not_pending", "Run has no pending approval: "+id)
		return
	}
	r.pending = nil
	r.approval <- choice
	f.setStatusLocked(r, StatusRunning, map[string]any{"last_event": "approval.responded"})
	responded := map[string]any{"choice": choice, "resolved": 1}
	if body.RequestID != nil {
		responded["request_id"] = *body.RequestID
	}
	f.pushLocked(r, "approval.responded", responded)
	record(http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"object": "hermes.run.approval_response", "run_id": id, "choice": choice, "resolved": 1})
}
