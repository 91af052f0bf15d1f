// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Opens counts apps.connections.open calls.
func (s *Server) Opens() int { return fakeserver.Get(&s.mu, &s.opens) }

// Live returns the ids of open connections that have been sent hello,
// ascending.
func (s *Server) Live() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id := 1; id <= s.nextConn; id++ {
		if c, ok := s.conns[id]; ok && c.hello {
			ids = append(ids, id)
		}
	}
	return ids
}

// Pings returns how many pings the client sent on connection id, and how
// many of the server's pings it answered.
func (s *Server) Pings(id int) (fromClient, answered int) {
	s.mu.Lock()
	c := s.all[id]
	s.mu.Unlock()
	if c == nil {
		return 0, 0
	}
	return int(c.pings.Load()), int(c.pongs.Load())
}

// Conns counts open websocket connections, with or without hello.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitHellos waits until n hellos have been sent in total and returns the
// id of the newest connection with hello.
func (s *Server) WaitHellos(t testing.TB, n int, timeout time.Duration) int {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d hellos", n), func() bool { return s.hellos >= n })
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.newest(); c != nil {
		return c.id
	}
	return 0
}

// WaitConns waits until n websocket connections are open at once.
func (s *Server) WaitConns(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d open connections", n), func() bool { return len(s.conns) >= n })
}

// WaitOpens waits until apps.connections.open was called n times.
func (s *Server) WaitOpens(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d apps.connections.open calls", n), func() bool { return s.opens >= n })
}

// WaitClosed waits until connection id has ended and returns the close
// status the client sent (-1: none, the TCP connection just went away).
func (s *Server) WaitClosed(t testing.TB, id int, timeout time.Duration) websocket.StatusCode {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("connection %d closed", id), func() bool { _, ok := s.closes[id]; return ok })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closes[id]
}

// Acks returns the acknowledgements received so far.
func (s *Server) Acks() []Ack { return fakeserver.Copy(&s.mu, &s.acks) }

// WaitAck waits for an acknowledgement of eventID and returns the first.
func (s *Server) WaitAck(t testing.TB, eventID string, timeout time.Duration) Ack {
	t.Helper()
	var got Ack
	s.waitFor(t, timeout, "ack of "+eventID, func() bool {
		for _, a := range s.acks {
			if a.EventID == eventID {
				got = a
				return true
			}
		}
		return false
	})
	return got
}

// Messages returns the posted messages as they stand.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = *m
	}
	return out
}

// WaitMessages waits until n messages have been posted.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d messages", n), func() bool { return len(s.msgs) >= n })
	return s.Messages()
}
