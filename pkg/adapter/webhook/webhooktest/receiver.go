// SPDX-License-Identifier: Apache-2.0

package webhooktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/webhook/internal/signature"
)

// Reply is an outbound reply as the receiver reads it off the wire.
type Reply struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	ThreadID       string `json:"thread_id"`
	Text           string `json:"text"`
	Part           int    `json:"part"`
	Parts          int    `json:"parts"`
	InReplyTo      string `json:"in_reply_to"`
	// Media is the file of a media part, nil for text.
	Media *Media `json:"media,omitempty"`
	// From the headers.
	IdempotencyKey string `json:"-"`
	WebhookID      string `json:"-"`
}

// Media is the file of a media reply part: a signed herald link and what
// the file is.
type Media struct {
	URL     string `json:"url"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	MIME    string `json:"mime"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Caption string `json:"caption,omitempty"`
}

// Request is one request the receiver got, whatever became of it.
type Request struct {
	Header http.Header
	Body   []byte
	// Reply is Body decoded (zero if it is not JSON).
	Reply Reply
	// Step describes the scripted step applied ("accept" when none).
	Step string
	// SignatureErr is the verification failure, nil if the signature was
	// valid or the receiver has no secret.
	SignatureErr error
	// Status is what the receiver answered; 0 when it never answered
	// (blackhole, abrupt close) or has not answered yet.
	Status int
	// Delivered is set when this request delivered its reply (first time
	// its Idempotency-Key completed); Duplicate when it was recognised as a
	// retry of an already delivered reply and answered from the record.
	Delivered bool
	Duplicate bool
}

// Step is one scripted behaviour. A step applies to one request, in order;
// once the script is used up the receiver accepts (Accept). Faults happen
// before signature verification unless AfterDelivery is used.
type Step struct {
	kind          stepKind
	status        int
	retryAfter    string
	delay         time.Duration
	afterDelivery bool
}

type stepKind int

const (
	kindAccept stepKind = iota
	kindRespond
	kindBlackhole
	kindClose
	kindDelay
)

// Accept processes the request normally: verify, deduplicate, deliver, 200.
func Accept() Step { return Step{kind: kindAccept} }

// Respond answers status without processing the request.
func Respond(status int) Step { return Step{kind: kindRespond, status: status} }

// RespondRetryAfter answers status with a Retry-After header (seconds or an
// HTTP-date, sent as given).
func RespondRetryAfter(status int, retryAfter string) Step {
	return Step{kind: kindRespond, status: status, retryAfter: retryAfter}
}

// RejectCredentials answers 401, as a receiver refusing the signature.
func RejectCredentials() Step { return Respond(http.StatusUnauthorized) }

// Blackhole reads the request and never answers, until the client gives up
// or the receiver is closed.
func Blackhole() Step { return Step{kind: kindBlackhole} }

// Delay waits d (a slow receiver), then accepts.
func Delay(d time.Duration) Step { return Step{kind: kindDelay, delay: d} }

// Close reads the request and closes the connection without an answer.
func Close() Step { return Step{kind: kindClose} }

// Fault is the step for a fault of the fakes' shared vocabulary
// (pkg/adapter/fakeserver): Blackhole, Drop (Close), RateLimit (429 with
// Retry-After in whole seconds) and Reject(status) (Respond). A fault's N
// does not apply here: a script holds one step per request.
func Fault(f fakeserver.Fault) Step {
	switch f.Kind {
	case fakeserver.KindBlackhole:
		return Blackhole()
	case fakeserver.KindDrop:
		return Close()
	case fakeserver.KindRateLimit:
		return RespondRetryAfter(http.StatusTooManyRequests, strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	if f.RetryAfter > 0 {
		return RespondRetryAfter(f.Status, strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	return Respond(f.Status)
}

// AfterDelivery makes the step happen after the reply was delivered and its
// Idempotency-Key recorded: the platform has the reply, but the sender does
// not learn it. A retry with the same key is then a duplicate.
func (s Step) AfterDelivery() Step {
	s.afterDelivery = true
	return s
}

func (s Step) String() string {
	var out string
	switch s.kind {
	case kindAccept:
		return "accept"
	case kindRespond:
		out = fmt.Sprintf("respond %d", s.status)
		if s.retryAfter != "" {
			out += " retry-after " + s.retryAfter
		}
	case kindBlackhole:
		out = "blackhole"
	case kindClose:
		out = "close"
	case kindDelay:
		return "delay " + s.delay.String()
	}
	if s.afterDelivery {
		out += " after delivery"
	}
	return out
}

// record is the receiver's memory of a completed Idempotency-Key.
type record struct {
	body   []byte
	status int
	answer []byte
}

// Receiver is a fake reply endpoint on 127.0.0.1.
type Receiver struct {
	// URL is where replies are to be POSTed (any path is accepted).
	URL string

	srv     *httptest.Server
	key     []byte
	closing chan struct{}
	once    sync.Once

	mu         sync.Mutex
	script     []Step
	requests   []Request
	delivered  []Reply
	duplicates int
	keys       map[string]*record
	notify     chan struct{}
	listen     func(network, address string) (net.Listener, error)
}

// Option configures a Receiver.
type Option func(*Receiver) error

// WithSecret makes the receiver verify Standard Webhooks signatures with
// secret ("whsec_<base64>" or raw) and answer 401 when they do not match.
func WithSecret(secret string) Option {
	return func(r *Receiver) error {
		k, err := signature.StandardKey([]byte(secret))
		if err != nil {
			return err
		}
		r.key = k
		return nil
	}
}

// WithListen makes the receiver listen on 127.0.0.1 through listen (a
// sandbox's network namespace, say) instead of the test's own.
func WithListen(listen func(network, address string) (net.Listener, error)) Option {
	return func(r *Receiver) error {
		r.listen = listen
		return nil
	}
}

// NewReceiver starts a receiver; it is closed when the test ends.
func NewReceiver(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	r := &Receiver{closing: make(chan struct{}), keys: map[string]*record{}}
	for _, o := range opts {
		if err := o(r); err != nil {
			t.Fatalf("webhooktest: %v", err)
		}
	}
	if r.listen == nil {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	} else {
		ln, err := r.listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("webhooktest: listen: %v", err)
		}
		r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
		r.srv.Listener.Close()
		r.srv.Listener = ln
		r.srv.Start()
	}
	r.URL = r.srv.URL + "/reply"
	t.Cleanup(r.Close)
	return r
}

// Close releases blackholed requests and stops the server.
func (r *Receiver) Close() {
	r.once.Do(func() {
		close(r.closing)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
}

// Script appends steps to the script.
func (r *Receiver) Script(steps ...Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, steps...)
}

// Requests returns every request so far, in arrival order.
func (r *Receiver) Requests() []Request { return fakeserver.Copy(&r.mu, &r.requests) }

// Delivered returns the distinct replies delivered, as the platform's users
// would see them: a retry recognised by its Idempotency-Key is not repeated.
func (r *Receiver) Delivered() []Reply { return fakeserver.Copy(&r.mu, &r.delivered) }

// Duplicates counts requests answered from the Idempotency-Key record.
func (r *Receiver) Duplicates() int { return fakeserver.Get(&r.mu, &r.duplicates) }

// WaitRequests waits until n requests have arrived (been read, before any
// scripted step or processing) and returns them. A returned Request may
// still be in progress: Status is 0 until it is answered.
func (r *Receiver) WaitRequests(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	var out []Request
	r.wait(t, timeout, func() bool {
		if len(r.requests) < n {
			return false
		}
		out = append([]Request(nil), r.requests...)
		return true
	}, func() string { return fmt.Sprintf("%d requests, want %d", len(r.requests), n) })
	return out
}

// WaitDelivered waits until n replies have been delivered (processed, not
// only read) and returns them.
func (r *Receiver) WaitDelivered(t testing.TB, n int, timeout time.Duration) []Reply {
	t.Helper()
	var out []Reply
	r.wait(t, timeout, func() bool {
		if len(r.delivered) < n {
			return false
		}
		out = append([]Reply(nil), r.delivered...)
		return true
	}, func() string { return fmt.Sprintf("%d replies delivered, want %d", len(r.delivered), n) })
	return out
}

// wait calls done, with r.mu held, each time the receiver changes, until it
// reports true or timeout passes (then the test fails with what says).
func (r *Receiver) wait(t testing.TB, timeout time.Duration, done func() bool, what func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if done() {
			r.mu.Unlock()
			return
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			r.mu.Lock()
			msg := what()
			r.mu.Unlock()
			t.Fatalf("webhooktest: after %v: %s", timeout, msg)
			return
		}
	}
}

// add records req and wakes waiters; it returns the index.
func (r *Receiver) add(req Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	r.wakeLocked()
	return len(r.requests) - 1
}

// wakeLocked wakes the waiters of WaitRequests and WaitDelivered; r.mu is
// held.
func (r *Receiver) wakeLocked() {
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
}

func (r *Receiver) next() Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.script) == 0 {
		return Accept()
	}
	s := r.script[0]
	r.script = r.script[1:]
	return s
}

func (r *Receiver) serve(w http.ResponseWriter, hr *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(hr.Body, 1<<20))
	step := r.next()
	req := Request{Header: hr.Header.Clone(), Body: body, Step: step.String()}
	if json.Unmarshal(body, &req.Reply) == nil {
		req.Reply.IdempotencyKey = hr.Header.Get("Idempotency-Key")
		req.Reply.WebhookID = hr.Header.Get(signature.HeaderID)
	}
	i := r.add(req)
	if !step.afterDelivery && step.kind != kindAccept && step.kind != kindDelay {
		r.fault(w, hr, step, i)
		return
	}
	if step.kind == kindDelay {
		t := time.NewTimer(step.delay)
		select {
		case <-t.C:
		case <-hr.Context().Done():
			t.Stop()
			fakeserver.DropConn(w)
			return
		case <-r.closing:
			t.Stop()
			fakeserver.DropConn(w)
			return
		}
	}
	if r.key != nil {
		err := signature.VerifyStandard(r.key, hr.Header.Get(signature.HeaderID),
			hr.Header.Get(signature.HeaderTimestamp), hr.Header.Get(signature.HeaderSignature), body, time.Now())
		if err != nil {
			r.update(i, func(q *Request) { q.SignatureErr, q.Status = err, http.StatusUnauthorized })
			http.Error(w, "invalid signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
	}
	status, answer := r.process(i)
	if step.afterDelivery {
		r.fault(w, hr, step, i)
		return
	}
	r.update(i, func(q *Request) { q.Status = status })
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

func (r *Receiver) update(i int, f func(*Request)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.requests[i])
}

// process applies Idempotency-Key semantics (draft-ietf-httpapi-idempotency-
// key-header) to request i: a completed key with the same body is answered
// from the record, with a different body 422. (Delivery is instantaneous
// here, so the draft's 409 for a key still in progress is only ever
// scripted.)
func (r *Receiver) process(i int) (int, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	req := &r.requests[i]
	key := strings.Trim(req.Header.Get("Idempotency-Key"), `"`)
	if key != "" {
		if rec, ok := r.keys[key]; ok {
			if !bytes.Equal(rec.body, req.Body) {
				return http.StatusUnprocessableEntity, []byte(`{"error":"Idempotency-Key reused with a different body"}`)
			}
			r.duplicates++
			req.Duplicate = true
			return rec.status, rec.answer
		}
	}
	r.delivered = append(r.delivered, req.Reply)
	req.Delivered = true
	r.wakeLocked()
	answer := []byte(fmt.Sprintf(`{"id":"rcv-%d"}`, len(r.delivered)))
	if key != "" {
		r.keys[key] = &record{body: req.Body, status: http.StatusOK, answer: answer}
	}
	return http.StatusOK, answer
}

func (r *Receiver) fault(w http.ResponseWriter, hr *http.Request, step Step, i int) {
	switch step.kind {
	case kindRespond:
		if step.retryAfter != "" {
			w.Header().Set("Retry-After", step.retryAfter)
		}
		r.update(i, func(q *Request) { q.Status = step.status })
		http.Error(w, fmt.Sprintf("scripted %d", step.status), step.status)
	case kindBlackhole:
		fakeserver.Hold(hr, r.closing)
		// Returning would let net/http send an implicit 200.
		fakeserver.DropConn(w)
	case kindClose:
		fakeserver.DropConn(w)
	}
}

// RefusingURL returns a URL on 127.0.0.1 where nothing listens: a port that
// was bound and released, so connecting is refused.
func RefusingURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	return "http://" + addr + "/reply"
}
