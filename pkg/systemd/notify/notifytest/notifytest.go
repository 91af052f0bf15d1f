// SPDX-License-Identifier: Apache-2.0

package notifytest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxSockPath is the usable length of sockaddr_un.sun_path on Linux.
const maxSockPath = 107

// Socket is a fake NOTIFY_SOCKET. Its methods are safe for concurrent use.
type Socket struct {
	path string
	conn *net.UnixConn
	done chan struct{}

	mu      sync.Mutex
	msgs    []string
	next    int           // index of the first datagram Next/WaitFor have not consumed
	arrived chan struct{} // closed and replaced whenever a datagram arrives
}

// Listen binds a unixgram socket in a temporary directory, sets
// NOTIFY_SOCKET to it with t.Setenv, and records datagrams until the test
// ends.
func Listen(t testing.TB) *Socket {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.sock")
	if len(path) > maxSockPath {
		// Long test names make long temporary paths; sun_path is short.
		short, err := os.MkdirTemp("", "notify")
		if err != nil {
			t.Fatalf("notifytest: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(short) })
		path = filepath.Join(short, "notify.sock")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("notifytest: listen %s: %v", path, err)
	}
	s := &Socket{path: path, conn: conn, done: make(chan struct{}), arrived: make(chan struct{})}
	go s.read()
	t.Cleanup(func() {
		_ = conn.Close()
		<-s.done
	})
	t.Setenv("NOTIFY_SOCKET", path)
	return s
}

func (s *Socket) read() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, _, err := s.conn.ReadFromUnix(buf)
		if err != nil {
			return // closed by Cleanup; a unixgram read fails for no other reason
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, string(buf[:n]))
		close(s.arrived)
		s.arrived = make(chan struct{})
		s.mu.Unlock()
	}
}

// Path is the socket's file system path (the value of NOTIFY_SOCKET).
func (s *Socket) Path() string { return s.path }

// All returns every datagram received so far, in order.
func (s *Socket) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// Count returns how many datagrams received so far contain substr.
func (s *Socket) Count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// Next returns the next datagram not yet consumed by Next or WaitFor, waiting
// up to timeout for it to arrive; it fails the test on timeout.
func (s *Socket) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	m, ok := s.await(func(string) bool { return true }, timeout)
	if !ok {
		t.Fatalf("notifytest: no datagram within %v (received so far: %q)", timeout, s.All())
	}
	return m
}

// WaitFor returns the first unconsumed datagram containing substr, waiting up
// to timeout; it consumes that datagram and every one before it. It fails
// the test on timeout.
func (s *Socket) WaitFor(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	m, ok := s.await(func(m string) bool { return strings.Contains(m, substr) }, timeout)
	if !ok {
		t.Fatalf("notifytest: no datagram containing %q within %v (received so far: %q)", substr, timeout, s.All())
	}
	return m
}

// Skip marks every datagram received so far as consumed, so the next Next or
// WaitFor only sees what arrives later.
func (s *Socket) Skip() {
	s.mu.Lock()
	s.next = len(s.msgs)
	s.mu.Unlock()
}

func (s *Socket) await(match func(string) bool, timeout time.Duration) (string, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for s.next < len(s.msgs) {
			m := s.msgs[s.next]
			s.next++
			if match(m) {
				s.mu.Unlock()
				return m, true
			}
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			return "", false
		}
	}
}
