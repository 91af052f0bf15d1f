// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The load side of the bench: webhook senders that run in the bench process
// with sockets in the sandbox's network namespace, and the receiver that
// herald (or the floor) POSTs replies to. A tracker pairs each reply with
// the message it answers (in_reply_to = the message's webhook-id), which
// gives the end-to-end latency from the POST being sent to the reply being
// received.

// flight is one message sent.
type flight struct {
	failed  bool // the client saw no 202: not expected to be answered
	sent    time.Time
	replied time.Time     // first reply, zero until then
	text    string        // text of the first reply
	replies int           // more than one: a duplicate delivery
	done    chan struct{} // closed at the first reply
}

// tracker pairs replies with messages.
type tracker struct {
	mu      sync.Mutex
	flights map[string]*flight
}

func newTracker() *tracker { return &tracker{flights: map[string]*flight{}} }

// reset forgets every flight (a new phase).
func (t *tracker) reset() {
	t.mu.Lock()
	t.flights = map[string]*flight{}
	t.mu.Unlock()
}

func (t *tracker) register(id string, sent time.Time) *flight {
	f := &flight{sent: sent, done: make(chan struct{})}
	t.mu.Lock()
	t.flights[id] = f
	t.mu.Unlock()
	return f
}

func (t *tracker) forget(id string) {
	t.mu.Lock()
	delete(t.flights, id)
	t.mu.Unlock()
}

// failed marks a message the client saw fail: it is not expected to be
// answered, but a reply shows it was stored anyway.
func (t *tracker) failed(id string) {
	t.mu.Lock()
	if f := t.flights[id]; f != nil {
		f.failed = true
	}
	t.mu.Unlock()
}

func (t *tracker) arrived(id string, at time.Time, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.flights[id]
	if f == nil {
		return // a message of another phase, or one cancelled by the end of a load
	}
	f.replies++
	if f.replies == 1 {
		f.replied = at
		f.text = text
		close(f.done)
	}
}

// replyCounts says how many accepted messages got a reply, how many got
// more than one, and how many got none; and how many messages the client
// saw fail were answered all the same.
func (t *tracker) replyCounts() (replied, duplicated, missing, failedAnswered int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.flights {
		switch {
		case f.failed:
			if f.replies > 0 {
				failedAnswered++
			}
		case f.replies == 0:
			missing++
		case f.replies > 1:
			duplicated++
			replied++
		default:
			replied++
		}
	}
	return
}

// waitReplies waits until every registered message got a reply or ctx ends.
func (t *tracker) waitReplies(ctx context.Context) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, _, missing, _ := t.replyCounts(); missing == 0 {
			return true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
}

// receiver is the reply endpoint in the sandbox's network namespace.
type receiver struct {
	srv *http.Server
	trk *tracker
	n   atomic.Int64
}

func newReceiver(ln net.Listener, trk *tracker) *receiver {
	r := &receiver{trk: trk}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go r.srv.Serve(ln)
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var body struct {
		InReplyTo string `json:"in_reply_to"`
		Text      string `json:"text"`
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil || json.Unmarshal(b, &body) != nil || body.InReplyTo == "" {
		http.Error(w, "bad reply", http.StatusBadRequest)
		return
	}
	r.n.Add(1)
	r.trk.arrived(body.InReplyTo, now, body.Text)
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.srv.Shutdown(ctx)
}

// sender posts webhook messages.
type sender struct {
	client *http.Client
	url    string
	trk    *tracker
	prefix string
	seq    atomic.Int64
}

// post sends one message of conversation conv and returns the status code.
// The delivery id goes in webhook-id, not Idempotency-Key: Go's transport
// silently retries requests carrying Idempotency-Key on a broken keep-alive
// connection, which would hide exactly the failures the restart measure
// counts.
//
// With idem the id goes in Idempotency-Key instead, to show what a client
// that retries by itself sees.
func (s *sender) post(ctx context.Context, conv, text string, idem bool) (id string, f *flight, code int, err error) {
	return s.postBody(ctx, map[string]string{"conversation_id": conv, "user_id": "u-" + conv, "text": text}, idem)
}

// postBody is post with any webhook body (attachments, for instance).
func (s *sender) postBody(ctx context.Context, in any, idem bool) (id string, f *flight, code int, err error) {
	id = fmt.Sprintf("%s-%d", s.prefix, s.seq.Add(1))
	body, err := json.Marshal(in)
	if err != nil {
		return id, nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return id, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if idem {
		req.Header.Set("Idempotency-Key", id)
	} else {
		req.Header.Set("webhook-id", id)
	}
	f = s.trk.register(id, time.Now())
	resp, err := s.client.Do(req)
	if err != nil {
		return id, f, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return id, f, resp.StatusCode, nil
}

// loadSpec describes one load run.
type loadSpec struct {
	Senders int
	// Convs is how many conversations each sender rotates through (its
	// own, so senders never share a session).
	Convs int
	// Duration bounds the run; Count, if > 0, ends it after that many
	// messages were sent.
	Duration time.Duration
	Count    int
	// WaitReply makes each sender wait for the reply (closed loop on the
	// whole pipeline) up to ReplyTimeout before its next message.
	WaitReply    bool
	ReplyTimeout time.Duration
	// Text is the message text.
	Text string
	// IdempotencyKey sends the delivery id as Idempotency-Key (Go's
	// transport then retries a request on a broken keep-alive connection
	// by itself) instead of webhook-id.
	IdempotencyKey bool
}

// loadResult is what a load run observed.
type loadResult struct {
	Sent, Accepted, Failed int
	FailKinds              map[string]int
	PostLat                []time.Duration // POST sent → 202 received
	E2ELat                 []time.Duration // POST sent → reply received (WaitReply)
	Late                   int             // WaitReply: no reply within ReplyTimeout
	Completed              int             // WaitReply: replies received before the end
	Elapsed                time.Duration
}

func (r *loadResult) merge(o *loadResult) {
	r.Sent += o.Sent
	r.Accepted += o.Accepted
	r.Failed += o.Failed
	for k, v := range o.FailKinds {
		if r.FailKinds == nil {
			r.FailKinds = map[string]int{}
		}
		r.FailKinds[k] += v
	}
	r.PostLat = append(r.PostLat, o.PostLat...)
	r.E2ELat = append(r.E2ELat, o.E2ELat...)
	r.Late += o.Late
	r.Completed += o.Completed
}

// run drives the load until the spec's duration or count, or ctx, ends.
func (s *sender) run(ctx context.Context, spec loadSpec) *loadResult {
	if spec.Text == "" {
		spec.Text = "Please summarise the last build failure and suggest a fix."
	}
	if spec.Convs <= 0 {
		spec.Convs = 1
	}
	if spec.ReplyTimeout <= 0 {
		spec.ReplyTimeout = 10 * time.Second
	}
	start := time.Now()
	deadline := start.Add(spec.Duration)
	if spec.Duration <= 0 {
		deadline = start.Add(24 * time.Hour)
	}
	var remaining atomic.Int64
	remaining.Store(int64(spec.Count))
	results := make([]*loadResult, spec.Senders)
	var wg sync.WaitGroup
	for w := range spec.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &loadResult{FailKinds: map[string]int{}}
			results[w] = res
			for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
				if spec.Count > 0 && remaining.Add(-1) < 0 {
					return
				}
				conv := fmt.Sprintf("%s-s%d-c%d", s.prefix, w, i%spec.Convs)
				sent := time.Now()
				id, f, code, err := s.post(ctx, conv, spec.Text, spec.IdempotencyKey)
				got := time.Now()
				res.Sent++
				// A message cancelled when the load stops is not tracked;
				// a failed one is marked.
				switch {
				case err != nil && ctx.Err() != nil:
					res.Sent--
					s.trk.forget(id)
					return
				case err != nil:
					res.Failed++
					res.FailKinds[failKind(err)]++
					s.trk.failed(id)
					continue
				case code != http.StatusAccepted:
					res.Failed++
					res.FailKinds[fmt.Sprintf("HTTP %d", code)]++
					s.trk.failed(id)
					continue
				}
				res.Accepted++
				res.PostLat = append(res.PostLat, got.Sub(sent))
				if !spec.WaitReply {
					continue
				}
				t := time.NewTimer(spec.ReplyTimeout)
				select {
				case <-f.done:
					t.Stop()
					if f.replied.Before(deadline) {
						res.Completed++
						res.E2ELat = append(res.E2ELat, f.replied.Sub(f.sent))
					}
				case <-t.C:
					res.Late++
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
		}()
	}
	wg.Wait()
	total := &loadResult{FailKinds: map[string]int{}}
	for _, r := range results {
		total.merge(r)
	}
	total.Elapsed = time.Since(start)
	if spec.Duration > 0 && total.Elapsed > spec.Duration {
		total.Elapsed = spec.Duration
	}
	return total
}

// failKind names an error in a few words for the report.
func failKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF (connection closed without an answer)"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
