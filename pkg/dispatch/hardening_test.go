// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/metrics"
)

// newLoggedEnv is newEnv with its log kept for assertions.
func newLoggedEnv(t *testing.T, opts Options, policy Policy) (*env, *logtest.Hook) {
	t.Helper()
	l, hook := logtest.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	e := &env{t: t, path: filepath.Join(t.TempDir(), "herald.db"), ad: newFakeAdapter("p"), agent: newFakeAgent(), m: metrics.Nop(), log: logrus.NewEntry(l)}
	e.open(opts, policy)
	return e, hook
}

// logged counts the entries whose message contains substr.
func logged(hook *logtest.Hook, substr string) int {
	n := 0
	for _, en := range hook.AllEntries() {
		if strings.Contains(en.Message, substr) {
			n++
		}
	}
	return n
}

// TestRetryAfterClamped: a platform asking for a 30-day pause gets
// MaxRetryAfter, and the clamp is logged.
func TestRetryAfterClamped(t *testing.T) {
	e, hook := newLoggedEnv(t, Options{MaxRetryAfter: 50 * time.Millisecond}, allowAll)
	e.ad.fail = []error{&adapter.RetryAfterError{After: 30 * 24 * time.Hour, Err: adapter.ErrRateLimited}}
	e.deliver(in("1", "c", "u", "hi"))
	e.ad.waitSent(t, 1)
	if n := logged(hook, "longer pause than herald waits"); n != 1 {
		t.Fatalf("clamp logged %d times, want 1", n)
	}
	for _, en := range hook.AllEntries() {
		if strings.Contains(en.Message, "longer pause") && en.Data["retry_after"] != 30*24*time.Hour {
			t.Errorf("clamp log retry_after = %v", en.Data["retry_after"])
		}
	}
}
