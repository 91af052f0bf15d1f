// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/systemd/notify/notifytest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

const wait = 5 * time.Second

func newTestNotifier(t *testing.T) (*Notifier, *test.Hook) {
	t.Helper()
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	return New(logrus.NewEntry(log)), hook
}

// assertDatagrams checks the exact datagrams received, in order. Every
// method sends synchronously, so once it returned its datagram is queued.
func assertDatagrams(t *testing.T, s *notifytest.Socket, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := s.Next(t, wait); got != w {
			t.Fatalf("datagram %d = %q, want %q (all: %q)", i, got, w, s.All())
		}
	}
	if got := s.All(); len(got) != len(want) {
		t.Fatalf("got %d datagrams %q, want %d", len(got), got, len(want))
	}
}

func TestVerbs(t *testing.T) {
	tests := []struct {
		name string
		do   func(n *Notifier) error
		want []string
	}{
		{"ready", func(n *Notifier) error { return n.Ready("serving 2 platforms") }, []string{"READY=1\nSTATUS=serving 2 platforms"}},
		{"ready without status", func(n *Notifier) error { return n.Ready("") }, []string{"READY=1"}},
		{"stopping", func(n *Notifier) error { return n.Stopping("draining 3 turns") }, []string{"STOPPING=1\nSTATUS=draining 3 turns"}},
		{"stopping without status", func(n *Notifier) error { return n.Stopping("") }, []string{"STOPPING=1"}},
		{"status", func(n *Notifier) error { return n.Status("telegram up") }, []string{"STATUS=telegram up"}},
		{"status clears", func(n *Notifier) error { return n.Status("") }, []string{"STATUS="}},
		{"errno", func(n *Notifier) error { return n.Errno(22, "bad config") }, []string{"STATUS=bad config\nERRNO=22"}},
		{"reload failed", func(n *Notifier) error { return n.ReloadFailed("reload failed: x", 22) }, []string{"READY=1\nSTATUS=reload failed: x\nERRNO=22"}},
		{"watchdog", func(n *Notifier) error { return n.Watchdog() }, []string{"WATCHDOG=1"}},
		{"extend", func(n *Notifier) error { return n.ExtendTimeout(3 * time.Second) }, []string{"EXTEND_TIMEOUT_USEC=3000000"}},
		{"extend rounds up", func(n *Notifier) error { return n.ExtendTimeout(1500 * time.Nanosecond) }, []string{"EXTEND_TIMEOUT_USEC=2"}},
		{"extend zero sends nothing", func(n *Notifier) error { return n.ExtendTimeout(0) }, nil},
		{"send", func(n *Notifier) error { return n.Send("X_HERALD=1", "STATUS=custom") }, []string{"X_HERALD=1\nSTATUS=custom"}},
		{"send nothing", func(n *Notifier) error { return n.Send() }, nil},
		{"sanitised status", func(n *Notifier) error { return n.Status("a\nb\r\n\tc \xff") }, []string{"STATUS=a b c \uFFFD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := notifytest.Listen(t)
			n, hook := newTestNotifier(t)
			if err := tt.do(n); err != nil {
				t.Fatalf("err = %v", err)
			}
			assertDatagrams(t, s, tt.want...)
			if len(hook.AllEntries()) != 0 {
				t.Errorf("unexpected log entries: %v", hook.AllEntries())
			}
			if os.Getenv("NOTIFY_SOCKET") != s.Path() {
				t.Errorf("NOTIFY_SOCKET changed to %q", os.Getenv("NOTIFY_SOCKET"))
			}
		})
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(daemon.SdNotifyMonotonicUsec(), "MONOTONIC_USEC="), "\n"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReloadingCarriesMonotonicUsec(t *testing.T) {
	s := notifytest.Listen(t)
	n, _ := newTestNotifier(t)
	before := monotonicUsec(t)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	got := s.Next(t, wait)
	m := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("datagram %q, want RELOADING=1 and MONOTONIC_USEC in one datagram without trailing newline", got)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	if v < before || v > after {
		t.Errorf("MONOTONIC_USEC=%d not within [%d, %d]", v, before, after)
	}
}

func TestStatusRepeatSuppressed(t *testing.T) {
	s := notifytest.Listen(t)
	n, _ := newTestNotifier(t)
	for _, st := range []string{"a", "a", "b", "b\n", "a"} {
		if err := n.Status(st); err != nil {
			t.Fatal(err)
		}
	}
	// Ready and Stopping set the status too.
	_ = n.Ready("c")
	_ = n.Status("c")
	_ = n.Stopping("d")
	_ = n.Status("d")
	_ = n.Send("STATUS=e")
	_ = n.Status("e")
	_ = n.Status("")
	_ = n.Status("")
	assertDatagrams(t, s, "STATUS=a", "STATUS=b", "STATUS=a", "READY=1\nSTATUS=c", "STOPPING=1\nSTATUS=d", "STATUS=e", "STATUS=")
}

func TestReadyClearsStandingErrno(t *testing.T) {
	s := notifytest.Listen(t)
	n, _ := newTestNotifier(t)
	_ = n.Reloading()
	_ = n.ReloadFailed("reload failed", 22)
	_ = n.Reloading()
	_ = n.Ready("ok")
	_ = n.Ready("ok again")
	_ = n.Errno(5, "io")
	_ = n.Errno(0, "fine")
	_ = n.Ready("ready")
	s.WaitFor(t, "ERRNO=22", wait)
	s.Next(t, wait) // second RELOADING
	for i, want := range []string{
		"READY=1\nSTATUS=ok\nERRNO=0",
		"READY=1\nSTATUS=ok again",
		"STATUS=io\nERRNO=5",
		"STATUS=fine\nERRNO=0",
		"READY=1\nSTATUS=ready",
	} {
		if got := s.Next(t, wait); got != want {
			t.Errorf("datagram %d = %q, want %q", i, got, want)
		}
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	s := notifytest.Listen(t)
	t.Setenv("NOTIFY_SOCKET", "")
	n, hook := newTestNotifier(t)
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	for _, err := range []error{
		n.Ready("x"), n.Reloading(), n.ReloadFailed("x", 1), n.Stopping("x"), n.Status("x"),
		n.Errno(1, "x"), n.Watchdog(), n.ExtendTimeout(time.Second), n.Send("A=1"),
	} {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
	}
	if got := s.All(); len(got) != 0 {
		t.Errorf("datagrams sent without NOTIFY_SOCKET: %q", got)
	}
	if len(hook.AllEntries()) != 0 {
		t.Errorf("logged: %v", hook.AllEntries())
	}
	// Status was not recorded as sent: once systemd is there, it goes out.
	t.Setenv("NOTIFY_SOCKET", s.Path())
	_ = n.Status("x")
	assertDatagrams(t, s, "STATUS=x")
}

func TestNilNotifier(t *testing.T) {
	s := notifytest.Listen(t)
	var n *Notifier
	for _, err := range []error{
		n.Ready("x"), n.Reloading(), n.ReloadFailed("x", 1), n.Stopping("x"), n.Status("x"),
		n.Errno(1, "x"), n.Watchdog(), n.ExtendTimeout(time.Second), n.Send("A=1"),
	} {
		if err != nil {
			t.Errorf("err = %v", err)
		}
	}
	if got := s.All(); len(got) != 0 {
		t.Errorf("nil notifier sent %q", got)
	}
	_ = New(nil).Watchdog() // nil logger is allowed
	s.WaitFor(t, "WATCHDOG=1", wait)
}

func TestErrorsLoggedOncePerKind(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing.sock"))
	n, hook := newTestNotifier(t)
	for range 3 {
		if err := n.Watchdog(); err == nil || !strings.HasPrefix(err.Error(), "notify: watchdog: ") {
			t.Fatalf("err = %v, want notify: watchdog: …", err)
		}
	}
	if err := n.Status("x"); err == nil {
		t.Fatal("Status to a missing socket: err = nil")
	}
	var warns, debugs int
	for _, e := range hook.AllEntries() {
		switch e.Level {
		case logrus.WarnLevel:
			warns++
		case logrus.DebugLevel:
			debugs++
		}
	}
	if warns != 1 || debugs != 3 {
		t.Errorf("got %d warnings and %d debug entries, want 1 and 3", warns, debugs)
	}
	// A different kind of failure (not a socket at all) warns again.
	notSock := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notSock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", notSock)
	_ = n.Watchdog()
	if e := hook.LastEntry(); e.Level != logrus.WarnLevel {
		t.Errorf("new error kind logged at %v, want warning", e.Level)
	}
	// The failed Status was not remembered: it is sent once systemd is back.
	s := notifytest.Listen(t)
	_ = n.Status("x")
	assertDatagrams(t, s, "STATUS=x")
}

func TestConcurrentUse(t *testing.T) {
	s := notifytest.Listen(t)
	n, _ := newTestNotifier(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				_ = n.Watchdog()
				_ = n.Status("worker " + strconv.Itoa(i) + " step " + strconv.Itoa(j))
			}
		})
	}
	wg.Wait()
	for range 80 {
		s.WaitFor(t, "WATCHDOG=1", wait)
	}
	// Every status differs from its predecessor unless two goroutines
	// interleaved identically, which they cannot (the strings are unique).
	// The last ones may still be on their way to the listener after the
	// last WATCHDOG=1 was read: wait for them (bounded), then count.
	testwait.Until(wait, func() bool { return s.Count("STATUS=") >= 80 })
	if got := s.Count("STATUS="); got != 80 {
		t.Errorf("%d STATUS datagrams, want 80", got)
	}
}

func TestSanitize(t *testing.T) {
	long := strings.Repeat("é", MaxStatusLen) // 2 bytes each
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"  padded  ", "padded"},
		{"two\nlines", "two lines"},
		{"crlf\r\nend", "crlf end"},
		{"nul\x00byte", "nul byte"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"tab\tand  spaces", "tab and spaces"},
		{"ünïcödé ✓", "ünïcödé ✓"},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := Sanitize(long)
	if len(got) > MaxStatusLen || !strings.HasSuffix(got, "…") || !utf8Valid(got) {
		t.Errorf("Sanitize(long) = %d bytes, suffix %q, valid %v", len(got), got[len(got)-5:], utf8Valid(got))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
