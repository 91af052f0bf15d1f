// SPDX-License-Identifier: Apache-2.0

package instance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Lock conflicts are between processes, so the tests re-execute the test
// binary: envHold makes the child take the lock and hold it until its stdin
// closes; envTry makes it try once and report.
const (
	envHold = "HERALD_TEST_INSTANCE_HOLD"
	envTry  = "HERALD_TEST_INSTANCE_TRY"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envHold); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked", os.Getpid())
		_, _ = io.Copy(io.Discard, os.Stdin) // hold until the parent lets go (or kills us)
		_ = l.Close()
		os.Exit(0)
	}
	if dir := os.Getenv(envTry); dir != "" {
		l, err := Acquire(dir)
		var le *LockedError
		switch {
		case errors.As(err, &le):
			fmt.Println("locked-by", le.PID)
		case err != nil:
			fmt.Println("error", err)
		default:
			fmt.Println("acquired")
			_ = l.Close()
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func childCmd(env string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Stderr = os.Stderr
	return cmd
}

// holdInChild starts a child holding the lock on dir and returns it once
// the lock is held.
func holdInChild(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := childCmd(envHold + "=" + dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if want := fmt.Sprintf("locked %d\n", cmd.Process.Pid); line != want {
		t.Fatalf("child said %q, want %q", line, want)
	}
	return cmd
}

func tryInChild(t *testing.T, dir string) string {
	t.Helper()
	out, err := childCmd(envTry + "=" + dir).Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestRefusedWhileChildHoldsAndFreeAfterSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	child := holdInChild(t, dir)

	l, err := Acquire(dir)
	var le *LockedError
	if !errors.As(err, &le) {
		if l != nil {
			_ = l.Close()
		}
		t.Fatalf("Acquire while the child holds the lock: %v, want *LockedError", err)
	}
	if le.PID != child.Process.Pid || le.Dir != dir {
		t.Errorf("LockedError %+v, want PID %d, Dir %s", le, child.Process.Pid, dir)
	}
	msg := err.Error()
	for _, want := range []string{dir, "PID " + strconv.Itoa(child.Process.Pid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}

	// SIGKILL: no cleanup code runs, the kernel releases the lock.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	l, err = Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire right after the holder was killed: %v", err)
	}
	defer l.Close()
	if got := tryInChild(t, dir); got != "locked-by "+strconv.Itoa(os.Getpid()) {
		t.Errorf("other process saw %q, want locked-by %d", got, os.Getpid())
	}
}

func TestCloseReleases(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tryInChild(t, dir); !strings.HasPrefix(got, "locked-by ") {
		t.Fatalf("while held: other process saw %q", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := tryInChild(t, dir); got != "acquired" {
		t.Fatalf("after Close: other process saw %q", got)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("re-Acquire: %v", err)
	}
	_ = l2.Close()
}

func TestSecondAcquireInProcessRefusedAndKeepsLock(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Through another path to the same file, too.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, link} {
		_, err := Acquire(d)
		var le *LockedError
		if !errors.As(err, &le) || le.PID != os.Getpid() {
			t.Fatalf("second Acquire(%s) = %v, want *LockedError with our PID", d, err)
		}
		if !strings.Contains(err.Error(), "this process") {
			t.Errorf("error %q should say the lock is ours", err)
		}
	}
	// The refused attempts must not have dropped the lock.
	if got := tryInChild(t, dir); got != "locked-by "+strconv.Itoa(os.Getpid()) {
		t.Errorf("after refused re-Acquire, other process saw %q: lock dropped", got)
	}
}

func TestFilesAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Dir() != dir || l.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Dir %q Path %q", l.Dir(), l.Path())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&^0o750 != 0 {
		t.Errorf("state directory mode %v, want at most 0750", di.Mode().Perm())
	}
	fi, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o600 != 0 {
		t.Errorf("lock file mode %v, want at most 0600", fi.Mode().Perm())
	}
	if fi.Size() != 0 {
		t.Errorf("lock file has %d bytes; nothing may be written to it", fi.Size())
	}
}

func TestUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(filepath.Join(file, "state"))
	var le *LockedError
	if err == nil || errors.As(err, &le) || !strings.HasPrefix(err.Error(), "instance: ") {
		t.Fatalf("Acquire under a regular file: %v", err)
	}
}

func TestLockedErrorMessages(t *testing.T) {
	tests := []struct {
		err  LockedError
		want string
	}{
		{LockedError{Dir: "/var/lib/herald", PID: 4242}, "instance: state directory /var/lib/herald is locked by another herald, PID 4242"},
		{LockedError{Dir: "/var/lib/herald", PID: 0}, "instance: state directory /var/lib/herald is locked by another herald (holder in another PID namespace)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
