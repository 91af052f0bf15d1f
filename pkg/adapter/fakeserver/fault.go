// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Kind is what a fault does.
type Kind int

// The kinds of fault.
const (
	// KindBlackhole reads the request and never answers.
	KindBlackhole Kind = iota + 1
	// KindDrop closes the connection without an answer.
	KindDrop
	// KindRateLimit answers "too many requests, retry after RetryAfter".
	KindRateLimit
	// KindReject answers with Status (and Code, in the platform's form).
	KindReject
)

func (k Kind) String() string {
	switch k {
	case KindBlackhole:
		return "blackhole"
	case KindDrop:
		return "drop"
	case KindRateLimit:
		return "rate limit"
	case KindReject:
		return "reject"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault is a failure a fake serves instead of its normal answer.
type Fault struct {
	Kind Kind
	// Status is the HTTP status of a rejection (of a rate limit: 429 when
	// 0). A fake that answers errors in a 200 (Slack's {"ok":false}) takes
	// Reject(http.StatusOK).WithCode(…).
	Status int
	// Code is the platform's error code or message in the body, if the
	// fault carries one ("invalid_auth", a Feishu msg, …).
	Code string
	// RetryAfter is the wait the answer asks for (Retry-After or the
	// platform's field); 0 sends none.
	RetryAfter time.Duration
	// N is how many requests the fault hits; 0: every one until Heal.
	N int
}

// Blackhole reads requests and never answers them.
func Blackhole() Fault { return Fault{Kind: KindBlackhole} }

// Drop closes the connection of each request without an answer.
func Drop() Fault { return Fault{Kind: KindDrop} }

// RateLimit answers the next n requests with a rate limit asking to retry
// after retryAfter.
func RateLimit(n int, retryAfter time.Duration) Fault {
	return Fault{Kind: KindRateLimit, Status: http.StatusTooManyRequests, RetryAfter: retryAfter, N: n}
}

// Reject answers with status.
func Reject(status int) Fault { return Fault{Kind: KindReject, Status: status} }

// Times limits f to the next n requests.
func (f Fault) Times(n int) Fault { f.N = n; return f }

// WithCode sets the platform's error code of the answer.
func (f Fault) WithCode(code string) Fault { f.Code = code; return f }

// WithRetryAfter sets the wait the answer asks for.
func (f Fault) WithRetryAfter(d time.Duration) Fault { f.RetryAfter = d; return f }

func (f Fault) String() string {
	s := f.Kind.String()
	if f.Status != 0 {
		s += fmt.Sprintf(" %d", f.Status)
	}
	if f.Code != "" {
		s += " " + f.Code
	}
	if f.RetryAfter > 0 {
		s += fmt.Sprintf(" retry after %v", f.RetryAfter)
	}
	if f.N > 0 {
		s += fmt.Sprintf(" ×%d", f.N)
	}
	return s
}

// Point names a place in a fake where faults apply: an endpoint, a
// handshake.
type Point string

// Faults schedules faults per point. Fakes embed it; its zero value is
// ready. Inject queues a fault behind those already at the point; each
// request at the point takes the first, which is used up after N requests
// (never, for N = 0).
type Faults struct {
	mu sync.Mutex
	at map[Point][]Fault
}

// Inject adds f at p.
func (fs *Faults) Inject(p Point, f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.at == nil {
		fs.at = map[Point][]Fault{}
	}
	fs.at[p] = append(fs.at[p], f)
}

// Heal removes every fault at p.
func (fs *Faults) Heal(p Point) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.at, p)
}

// Take returns the fault the next request at p gets, and counts it.
func (fs *Faults) Take(p Point) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	q := fs.at[p]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	if q[0].N > 0 {
		q[0].N--
		if q[0].N == 0 {
			q = q[1:]
		}
	}
	if len(q) == 0 {
		delete(fs.at, p)
	} else {
		fs.at[p] = q
	}
	return f, true
}

// TakeIf is Take for a fault of one of kinds only: a fake that serves some
// kinds before processing a request (a rejection) and others after (a black
// hole that first records the message) asks for each at its place.
func (fs *Faults) TakeIf(p Point, kinds ...Kind) (Fault, bool) {
	fs.mu.Lock()
	q := fs.at[p]
	ok := len(q) > 0 && slices.Contains(kinds, q[0].Kind)
	fs.mu.Unlock()
	if !ok {
		return Fault{}, false
	}
	return fs.Take(p)
}

// Hold is a black hole for one HTTP request: it drains the body (net/http
// notices a client going away only once the body is read) and blocks until
// the client gives up or done is closed (the fake closing).
func Hold(r *http.Request, done <-chan struct{}) {
	buf := make([]byte, 4096)
	for {
		if _, err := r.Body.Read(buf); err != nil {
			break
		}
	}
	select {
	case <-r.Context().Done():
	case <-done:
	}
}

// DropConn drops the connection under w without an answer: a reset, not a
// graceful FIN, like a crashing or unplugged server. Where the connection
// cannot be taken over (HTTP/2) it aborts the handler, which net/http turns
// into a silent close.
func DropConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
