// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// The fault points of the Slack fake (see fakeserver for the faults).
const (
	// Open is apps.connections.open. Blackhole: the request hangs.
	Open fakeserver.Point = "apps.connections.open"
	// Upgrade is the websocket handshake. Blackhole: apps.connections.open
	// answers with a URL whose server accepts TCP connections and never
	// answers the handshake; Reject(status) refuses the upgrade.
	Upgrade fakeserver.Point = "upgrade"
	// Post is chat.postMessage. Blackhole and Drop record the message
	// (the user sees it) before they fail the request.
	Post fakeserver.Point = "chat.postMessage"
	// Update is chat.update. Blackhole and Drop apply the edit first.
	Update fakeserver.Point = "chat.update"
)

// answer serves f as Slack would: a rejection or a rate limit is an
// {"ok":false,"error":Code} body (Code "ratelimited" for a 429 without
// one; a status other than 200 and 429 without a code is a bare error
// page), with Retry-After in seconds when set.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, f fakeserver.Fault) {
	switch f.Kind {
	case fakeserver.KindBlackhole:
		fakeserver.Hold(r, s.ctx.Done())
		return
	case fakeserver.KindDrop:
		fakeserver.DropConn(w)
		return
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if f.Code == "" && status != http.StatusOK && status != http.StatusTooManyRequests {
		http.Error(w, http.StatusText(status), status)
		return
	}
	code := f.Code
	if code == "" && status == http.StatusTooManyRequests {
		code = "ratelimited"
	}
	writeJSON(w, status, map[string]any{"ok": false, "error": code})
}

// rejects serves the fault at p if it is answered before the request is
// processed (a rejection or a rate limit).
func (s *Server) rejects(w http.ResponseWriter, r *http.Request, p fakeserver.Point) bool {
	return s.serveIf(w, r, p, fakeserver.KindReject, fakeserver.KindRateLimit)
}

// fails serves the fault at p if it fails a request that was processed (a
// black hole or a dropped connection).
func (s *Server) fails(w http.ResponseWriter, r *http.Request, p fakeserver.Point) bool {
	return s.serveIf(w, r, p, fakeserver.KindBlackhole, fakeserver.KindDrop)
}

func (s *Server) serveIf(w http.ResponseWriter, r *http.Request, p fakeserver.Point, kinds ...fakeserver.Kind) bool {
	f, ok := s.TakeIf(p, kinds...)
	if ok {
		s.answer(w, r, f)
	}
	return ok
}

func (s *Server) acceptHole() {
	defer s.wg.Done()
	for {
		c, err := s.hole.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.holeConns = append(s.holeConns, c)
		s.notify()
		s.mu.Unlock()
	}
}

// WaitHoleConns waits until n connections reached the black-holed
// websocket endpoint (a Blackhole at Upgrade).
func (s *Server) WaitHoleConns(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d black-holed handshakes", n), func() bool { return len(s.holeConns) >= n })
}
