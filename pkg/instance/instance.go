// SPDX-License-Identifier: Apache-2.0

package instance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// FileName is the lock file's name inside the state directory.
const FileName = "herald.lock"

// LockedError reports that another process holds the lock.
type LockedError struct {
	// Dir is the state directory.
	Dir string
	// PID is the holder as reported by the kernel; 0 if unknown (the holder
	// is in another PID namespace).
	PID int
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("instance: state directory %s is locked by another herald (holder in another PID namespace)", e.Dir)
	}
	if e.PID == os.Getpid() {
		return fmt.Sprintf("instance: state directory %s is already locked by this process (PID %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("instance: state directory %s is locked by another herald, PID %d", e.Dir, e.PID)
}

// Lock is a held instance lock. Close releases it.
type Lock struct {
	dir  string
	path string
	key  fileKey

	mu sync.Mutex
	f  *os.File // the only descriptor of the lock file in this process; nil after Close
}

// fileKey identifies a file independently of its path.
type fileKey struct{ dev, ino uint64 }

// held records the lock files this process has locked: a second POSIX lock
// on the same file would succeed (locks are per process) and closing either
// descriptor would drop both.
var (
	heldMu sync.Mutex
	held   = map[fileKey]bool{}
)

// Acquire locks dir (created 0750 if missing) by its herald.lock file
// (created 0600). If another process holds it, the error is a *LockedError
// naming the holder's PID. It does not wait.
func Acquire(dir string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("instance: state directory: %w", err)
	}
	path := filepath.Join(abs, FileName)

	heldMu.Lock()
	defer heldMu.Unlock()
	// Check before opening: even a descriptor opened only to find out would
	// release this process's lock when closed.
	if fi, err := os.Stat(path); err == nil {
		if held[keyOfInfo(fi)] {
			return nil, &LockedError{Dir: abs, PID: os.Getpid()}
		}
	}
	// O_RDWR: a write lock needs a descriptor open for writing. Nothing is
	// ever written.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("instance: %w", err)
	}
	if err := lock(f, abs); err != nil {
		_ = f.Close()
		return nil, err
	}
	key := keyOfInfo(fi)
	held[key] = true
	return &Lock{dir: abs, path: path, key: key, f: f}, nil
}

// lock takes the write lock or reports its holder. A holder can release
// between F_SETLK and F_GETLK; then try again.
func lock(f *os.File, dir string) error {
	for range 3 {
		fl := wholeFile(syscall.F_WRLCK)
		err := fcntlLock(f, syscall.F_SETLK, &fl)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("instance: locking %s: %w", f.Name(), err)
		}
		probe := wholeFile(syscall.F_WRLCK)
		if err := fcntlLock(f, syscall.F_GETLK, &probe); err != nil {
			return fmt.Errorf("instance: querying lock holder of %s: %w", f.Name(), err)
		}
		if probe.Type != syscall.F_UNLCK {
			return &LockedError{Dir: dir, PID: int(probe.Pid)}
		}
	}
	return fmt.Errorf("instance: %s: lock holder keeps changing", f.Name())
}

func wholeFile(typ int16) syscall.Flock_t {
	return syscall.Flock_t{Type: typ, Whence: io.SeekStart, Start: 0, Len: 0}
}

func fcntlLock(f *os.File, cmd int, fl *syscall.Flock_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = syscall.FcntlFlock(fd, cmd, fl)
			if !errors.Is(lerr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return lerr
}

func keyOfInfo(fi os.FileInfo) fileKey {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino}
}

// Dir is the locked state directory (absolute).
func (l *Lock) Dir() string { return l.dir }

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Close releases the lock. It is safe to call more than once.
func (l *Lock) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	// Closing the only descriptor releases the lock.
	err := l.f.Close()
	l.f = nil
	delete(held, l.key)
	if err != nil {
		return fmt.Errorf("instance: releasing %s: %w", l.path, err)
	}
	return nil
}
