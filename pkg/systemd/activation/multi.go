// SPDX-License-Identifier: Apache-2.0

package activation

import (
	"errors"
	"net"
	"sync"
)

// multiListener accepts from several listeners: one goroutine per listener,
// started by the first Accept and ended by Close.
type multiListener struct {
	lns []net.Listener

	accepted chan acceptResult // unbuffered: a loop accepts again only once its result was taken
	done     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex // orders starting the loops against Close
	started  bool
	closed   bool
	closeErr error
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func newMultiListener(lns []net.Listener) *multiListener {
	return &multiListener{lns: lns, accepted: make(chan acceptResult), done: make(chan struct{})}
}

// Accept returns the next connection from any of the listeners. Errors of
// the underlying listeners are passed through; one that is not temporary
// ends accepting on that listener only.
func (m *multiListener) Accept() (net.Conn, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, m.closedError()
	}
	if !m.started {
		m.started = true
		for _, ln := range m.lns {
			m.wg.Add(1)
			go m.acceptLoop(ln)
		}
	}
	m.mu.Unlock()
	select {
	case r := <-m.accepted:
		return r.conn, r.err
	case <-m.done:
		return nil, m.closedError()
	}
}

func (m *multiListener) acceptLoop(ln net.Listener) {
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case m.accepted <- acceptResult{c, err}:
		case <-m.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		var te interface{ Temporary() bool }
		if err != nil && !(errors.As(err, &te) && te.Temporary()) {
			return
		}
	}
}

func (m *multiListener) closedError() error {
	return &net.OpError{Op: "accept", Net: m.Addr().Network(), Addr: m.Addr(), Err: net.ErrClosed}
}

// Close closes every listener and waits for the accept goroutines to end.
func (m *multiListener) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.closeErr
	}
	m.closed = true
	close(m.done)
	var errs []error
	for _, ln := range m.lns {
		if err := ln.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.wg.Wait()
	m.closeErr = errors.Join(errs...)
	return m.closeErr
}

// Addr is the first listener's address.
func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }

// Interface guards
var _ net.Listener = (*multiListener)(nil)
