// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"context"
	"strings"
	"testing"
	"time"
)

// New boots a sandbox for a test: it skips t when Available is false, fails
// it when the boot fails, and registers a cleanup that closes the sandbox.
// If t failed by then, the cleanup first logs the tail of the journal, the
// failed units and the console output. Subtests may share the result.
func New(t testing.TB, opts Options) *Sandbox {
	t.Helper()
	Require(t)
	timeout := opts.BootTimeout
	if timeout <= 0 {
		timeout = DefaultBootTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	s, err := Boot(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox %s: PID 1 is %d, booted in %v", s.Name(), s.PID1(), time.Since(start).Round(time.Millisecond))
	if s.degraded != "" {
		t.Logf("sandbox %s: boot degraded, failed units:\n%s", s.Name(), s.degraded)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.dump(t)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// dump logs what helps to understand a failed test.
func (s *Sandbox) dump(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, _, _, err := s.Run(ctx, "journalctl", "-b", "--no-pager", "-n", "200"); err == nil {
		t.Logf("sandbox %s: journalctl -b (last 200 lines):\n%s", s.Name(), out)
	}
	if out, err := s.Systemctl(ctx, "--failed"); err == nil {
		t.Logf("sandbox %s: systemctl --failed:\n%s", s.Name(), out)
	}
	if c := strings.TrimSpace(s.Console()); c != "" {
		t.Logf("sandbox %s: console:\n%s", s.Name(), c)
	}
}
