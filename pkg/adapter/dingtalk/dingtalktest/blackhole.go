// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"net"
	"sync"
)

// freezeListener wraps every accepted connection so that Blackhole can
// silence it: a frozen connection stays open but neither reads nor writes,
// like a socket whose peer vanished without a FIN.
type freezeListener struct {
	net.Listener
	s *Server
}

func (l *freezeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &freezeConn{Conn: c, closed: make(chan struct{})}
	l.s.mu.Lock()
	l.s.raw = append(l.s.raw, fc)
	l.s.mu.Unlock()
	return fc, nil
}

type freezeConn struct {
	net.Conn
	mu        sync.Mutex
	frozen    chan struct{} // non-nil while frozen
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *freezeConn) freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen == nil {
		c.frozen = make(chan struct{})
	}
}

// hold blocks while the connection is frozen, until it is closed.
func (c *freezeConn) hold() bool {
	c.mu.Lock()
	f := c.frozen
	c.mu.Unlock()
	if f == nil {
		return true
	}
	<-c.closed
	return false
}

func (c *freezeConn) Read(p []byte) (int, error) {
	if !c.hold() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	if err == nil && !c.hold() {
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *freezeConn) Write(p []byte) (int, error) {
	if !c.hold() {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *freezeConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Blackhole freezes every open connection: the stream socket stays open
// but the fake reads nothing (no pong, no acknowledgement, no close
// handshake) and writes nothing. New connections work normally.
func (s *Server) Blackhole() {
	s.mu.Lock()
	raw := append([]*freezeConn(nil), s.raw...)
	s.deaf = true
	s.changedLocked()
	s.mu.Unlock()
	for _, c := range raw {
		c.freeze()
	}
}
