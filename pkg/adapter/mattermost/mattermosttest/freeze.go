// SPDX-License-Identifier: Apache-2.0

package mattermosttest

import (
	"context"
	"net"
	"sync"
)

// freezeListener wraps every accepted connection in a freezeConn.
type freezeListener struct{ net.Listener }

func (l freezeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFreezeConn(c), nil
}

// freezeConn is a TCP connection that can be blackholed: once frozen,
// nothing more is read from it or written to it (pings included) until it
// is closed, and it stays open.
type freezeConn struct {
	net.Conn
	frozen    chan struct{}
	closed    chan struct{}
	freezeOne sync.Once
	closeOne  sync.Once
}

func newFreezeConn(c net.Conn) *freezeConn {
	return &freezeConn{Conn: c, frozen: make(chan struct{}), closed: make(chan struct{})}
}

func (c *freezeConn) freeze() { c.freezeOne.Do(func() { close(c.frozen) }) }

// hold blocks a frozen connection's reads and writes until it is closed.
func (c *freezeConn) hold() bool {
	select {
	case <-c.frozen:
		<-c.closed
		return true
	default:
		return false
	}
}

func (c *freezeConn) Read(b []byte) (int, error) {
	if c.hold() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(b)
	if c.hold() {
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *freezeConn) Write(b []byte) (int, error) {
	if c.hold() {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *freezeConn) Close() error {
	c.closeOne.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

type connKey struct{}

// connContext records the connection of each request, so that the
// websocket handler can freeze its own.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}
