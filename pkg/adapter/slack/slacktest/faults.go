// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"fmt"
	"testing"
	"time"
)

// Blackhole selects endpoints that accept a request and never answer.
type Blackhole int

// Fault is a scripted Web API failure.
type Fault struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Error is the "error" of an {"ok":false} body; empty sends no JSON
	// body unless Status is 200 or 429.
	Error string
	// RetryAfter, if positive, is sent as Retry-After (seconds).
	RetryAfter int
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
// websocket endpoint (BlackholeUpgrade).
func (s *Server) WaitHoleConns(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d black-holed handshakes", n), func() bool { return len(s.holeConns) >= n })
}

// SetBlackhole selects the endpoints that never answer (0: none).
func (s *Server) SetBlackhole(b Blackhole) {
	s.mu.Lock()
	s.blackhole = b
	s.mu.Unlock()
}

// FailOpen makes the next n apps.connections.open calls answer f.
func (s *Server) FailOpen(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.openFaults = append(s.openFaults, f)
	}
}

// FailUpgrade makes the next n websocket handshakes fail with HTTP status.
func (s *Server) FailUpgrade(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.upgradeErr = append(s.upgradeErr, status)
	}
}

// FailPost makes the next n chat.postMessage or chat.update calls answer f.
func (s *Server) FailPost(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.postFaults = append(s.postFaults, f)
	}
}
