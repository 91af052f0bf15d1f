// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialContext connects to addr from inside the sandbox's network namespace
// (its 127.0.0.1 is not the host's). Only the socket is created in the
// namespace; the connection is then used like any other. Addresses must be
// IP literals: name resolution would run in the host's namespace.
//
// How: a goroutine locks its OS thread, setns(2)es the thread into the
// sandbox's network namespace, dials, and switches back. If switching back
// fails the thread stays locked and exits with the goroutine, so no other
// goroutine ever runs in the wrong namespace.
func (s *Sandbox) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.closing.Load() {
		return nil, ErrClosed
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := s.inNetNS(func() (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("sandbox: dial %s %s: %w", network, addr, r.err)
	}
	return r.c, nil
}

// Listen opens a listener inside the sandbox's network namespace, so a test
// can serve what units in the sandbox connect to (a fake agent backend, a
// reply receiver) from the test process itself. addr must be an IP literal
// (127.0.0.1:0 picks a free port of the sandbox's loopback). The caller
// closes it.
func (s *Sandbox) Listen(network, addr string) (net.Listener, error) {
	if s.closing.Load() {
		return nil, ErrClosed
	}
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var ln net.Listener
		_, err := s.inNetNS(func() (net.Conn, error) {
			var err error
			ln, err = net.Listen(network, addr)
			return nil, err
		})
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("sandbox: listen %s %s: %w", network, addr, r.err)
	}
	return r.ln, nil
}

// inNetNS runs fn on the calling goroutine's thread switched into the
// sandbox's network namespace. Call it only from a goroutine of its own.
func (s *Sandbox) inNetNS(fn func() (net.Conn, error)) (net.Conn, error) {
	// Close must not close the namespace fd while it is used here.
	s.nsMu.RLock()
	defer s.nsMu.RUnlock()
	if s.netns == nil {
		return nil, ErrClosed
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := unix.Setns(int(s.netns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns: %w", err)
	}
	c, err := fn()
	if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	} // else: leave the thread locked; it exits with this goroutine.
	return c, err
}

// HTTPClient returns a client whose connections are made inside the
// sandbox's network namespace (see DialContext), for requests to
// http://127.0.0.1:<port>/ of services in the sandbox. It ignores proxy
// settings. Close closes its idle connections.
func (s *Sandbox) HTTPClient() *http.Client {
	t := &http.Transport{
		DialContext:           s.DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	s.mu.Lock()
	s.transports = append(s.transports, t)
	s.mu.Unlock()
	return &http.Client{Transport: t, Timeout: time.Minute}
}
