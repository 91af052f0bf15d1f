// SPDX-License-Identifier: Apache-2.0

package activation

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/sirupsen/logrus"
)

// firstFD is SD_LISTEN_FDS_START.
const firstFD = 3

// staleCheckTimeout bounds the dial that tells a stale unix socket file from
// a live one.
const staleCheckTimeout = time.Second

// Set holds the listeners systemd passed, by name, until they are taken. It
// is safe for concurrent use. A nil *Set has no listeners (Listen always
// binds the fallback).
type Set struct {
	log *logrus.Entry

	mu    sync.Mutex
	names []string // distinct names in fd order
	lns   map[string][]net.Listener
}

// Load takes the sockets passed by systemd. It must be called once, early,
// before anything else reads LISTEN_*; it removes those variables from the
// environment. Without socket activation it returns an empty Set. An fd that
// is not a listening stream socket is an error, and then every passed fd is
// closed.
func Load(log *logrus.Entry) (*Set, error) {
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	s := &Set{log: log, lns: make(map[string][]net.Listener)}

	nfds, pid := os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID")
	if nfds != "" && pid != strconv.Itoa(os.Getpid()) {
		log.WithFields(logrus.Fields{"listen_fds": nfds, "listen_pid": pid, "pid": os.Getpid()}).
			Warn("LISTEN_FDS is set but LISTEN_PID is not this process: the sockets were passed to another process " +
				"(is ExecStart= a wrapper such as sh -c? it must exec herald directly); binding fallback addresses instead")
	}
	files := activation.Files(true)
	_ = os.Unsetenv("LISTEN_PIDFDID")

	var errs []error
	var received []string
	for i, f := range files {
		name := f.Name()
		ln, err := fileListener(f)
		_ = f.Close() // net.FileListener works on a dup
		if err != nil {
			errs = append(errs, fmt.Errorf("activation: fd %d (index %d, name %q): %w", firstFD+i, i, name, err))
			continue
		}
		if _, ok := s.lns[name]; !ok {
			s.names = append(s.names, name)
		}
		s.lns[name] = append(s.lns[name], ln)
		received = append(received, fmt.Sprintf("%s (fd %d, %s)", name, firstFD+i, describeAddr(ln.Addr())))
	}
	if len(errs) > 0 {
		_ = s.Close()
		return nil, errors.Join(errs...)
	}
	if len(received) > 0 {
		// One line for all of them, each named in the message itself.
		log.WithField("sockets", len(received)).Info("received sockets from systemd: " + strings.Join(received, ", "))
	}
	return s, nil
}

// fileListener turns f into a net.Listener if it is a listening stream
// socket. net.FileListener alone would accept a unixgram or a connected
// socket and fail only at Accept.
func fileListener(f *os.File) (net.Listener, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var soType, accepting int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		soType, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE)
		if serr == nil {
			accepting, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
		}
	}); err != nil {
		return nil, err
	}
	switch {
	case errors.Is(serr, syscall.ENOTSOCK):
		return nil, errors.New("not a socket (a regular file or pipe was passed; herald needs ListenStream= sockets)")
	case serr != nil:
		return nil, fmt.Errorf("getsockopt: %w", serr)
	case soType != syscall.SOCK_STREAM:
		return nil, fmt.Errorf("not a stream socket (socket type %d; ListenDatagram=/ListenSequentialPacket= are not supported, use ListenStream=)", soType)
	case accepting == 0:
		return nil, errors.New("stream socket is not listening (Accept=yes passes connections; herald needs Accept=no)")
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("not usable as a listener: %w", err)
	}
	return ln, nil
}

// Take removes and returns the listeners passed under name (nil if none), in
// fd order. The caller owns and closes them.
func (s *Set) Take(name string) []net.Listener {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lns := s.lns[name]
	delete(s.lns, name)
	s.names = slices.DeleteFunc(s.names, func(n string) bool { return n == name })
	return lns
}

// Has reports whether systemd passed a listener under name that was not
// taken yet.
func (s *Set) Has(name string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lns[name]) > 0
}

// Listen returns the listener systemd passed under name (activated = true),
// or else binds fallbackAddr on network ("tcp", "unix", …). Several fds with
// the same name are combined into one listener accepting from all of them;
// its Addr is the first one's. Closing an inherited listener never unlinks
// its unix socket path. For network "unix" the fallback prepares the path:
// see the package documentation. An abstract address ("@name") is used as
// is.
func (s *Set) Listen(name, network, fallbackAddr string) (ln net.Listener, activated bool, err error) {
	if lns := s.Take(name); len(lns) > 0 {
		if len(lns) == 1 {
			ln = lns[0]
		} else {
			ln = newMultiListener(lns)
		}
		if s.log != nil {
			entry := s.log.WithFields(logrus.Fields{"name": name, "addr": describeAddr(ln.Addr()), "fds": len(lns)})
			if ln.Addr().Network() != network {
				entry.WithField("fallback", network+" "+fallbackAddr).
					Warn("socket unit passes a different kind of socket than the configured fallback; using the passed socket")
			}
			// Load logged the sockets at info already, in one line.
			entry.Debug("using socket-activated listener")
		}
		return ln, true, nil
	}
	ln, err = listen(network, fallbackAddr)
	if err != nil {
		return nil, false, fmt.Errorf("activation: %s: listen %s %s: %w", name, network, fallbackAddr, err)
	}
	return ln, false, nil
}

// listen binds addr. For a unix path it creates the parent directory
// (0750), removes a stale socket file, chmods the socket 0660 and makes
// Close unlink it.
func listen(network, addr string) (net.Listener, error) {
	if network != "unix" || strings.HasPrefix(addr, "@") || addr == "" {
		return net.Listen(network, addr)
	}
	if err := os.MkdirAll(filepath.Dir(addr), 0o750); err != nil {
		return nil, err
	}
	if err := removeStale(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	// There is a short window with umask permissions; the 0750 directory
	// covers it.
	if err := os.Chmod(addr, 0o660); err != nil {
		_ = ul.Close()
		return nil, err
	}
	return ul, nil
}

// ErrInUse is returned (wrapped) when a unix socket path to bind is live:
// another process, most likely another herald, accepts connections on it.
var ErrInUse = errors.New("socket path in use")

// removeStale removes path if it is a socket file nobody accepts on (left by
// a crashed process). A live socket or any other file is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, staleCheckTimeout)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("%s is in use: another process accepts connections on it (is herald already running?): %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be probed, not removing it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

// Unused returns the names of passed listeners nobody took, in fd order. The
// daemon logs them: a socket unit with a name herald does not know is
// usually a typo in FileDescriptorName=.
func (s *Set) Unused() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names)
}

// Close closes the listeners nobody took.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, name := range s.names {
		for _, ln := range s.lns[name] {
			if err := ln.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		delete(s.lns, name)
	}
	s.names = nil
	return errors.Join(errs...)
}

func describeAddr(a net.Addr) string {
	return a.Network() + " " + a.String()
}
