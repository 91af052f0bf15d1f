// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// refusedResponse is written to a connection refused for being over
// listen.max_connections, before any of its request is read.
const refusedResponse = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 29\r\n" +
	"\r\n" +
	"too many connections; retry\r\n"

// refuseWriteTimeout bounds writing refusedResponse. The socket was just
// accepted, so its send buffer is empty and the write does not wait; the
// deadline only makes that certain.
const refuseWriteTimeout = 100 * time.Millisecond

// refusalLogEvery is the most often a refusal is logged; the metric counts
// every one.
const refusalLogEvery = 10 * time.Second

// limitListener caps the connections open at once on the public listener.
//
// A connection beyond the cap is accepted, answered 503 (Retry-After: 1)
// without reading its request, and closed at once, rather than left waiting
// in the kernel's accept queue (as a blocking Accept would): the refusal
// costs herald no goroutine, buffer or descriptor beyond that moment, so a
// flood cannot hold more than the cap, while a client sees a clear,
// retryable answer instead of a timeout. The answer is best effort: when
// the request had already arrived, the close may reset the connection
// before the client reads it, which it must retry as well.
type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused func()
	log     *logrus.Entry

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

func newLimitListener(ln net.Listener, max int, refused func(), log *logrus.Entry) *limitListener {
	return &limitListener{Listener: ln, max: int64(max), refused: refused, log: log}
}

// Accept returns the next connection within the cap, refusing those over
// it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

func (l *limitListener) refuse(c net.Conn) {
	l.refused()
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, _ = c.Write([]byte(refusedResponse))
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = c.Close()

	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.lastLog) < refusalLogEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.lastLog, l.suppressed = now, 0
	l.mu.Unlock()
	e := l.log.WithFields(logrus.Fields{"remote": c.RemoteAddr().String(), "max_connections": l.max})
	if n > 0 {
		e = e.WithField("suppressed", n)
	}
	e.Warn("HTTP connection refused: listen.max_connections are open")
}

// limitedConn gives its place back when closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite half-closes the connection, as net/http does before closing
// one it answered with Connection: close, so that the client reads the
// whole answer.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
