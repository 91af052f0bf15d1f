// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/store"
)

// TestStoreFailedExitCodes: a message store failing at start-up exits 65
// (which RestartPreventExitStatus= turns into "never restart") only when it
// is corrupt; an I/O error reading the work left by the previous instance
// is 74, which the unit restarts, and every failure is logged.
func TestStoreFailedExitCodes(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"corrupt record", fmt.Errorf("dispatch: recover messages: %w", fmt.Errorf("%w: inbound 7: bad json", store.ErrCorrupt)), ExitStoreCorrupt},
		{"I/O error", fmt.Errorf("dispatch: recover replies: store: query outbox: %w", syscall.EIO), ExitStoreIO},
		{"permission", fmt.Errorf("dispatch: read sessions: %w", syscall.EACCES), ExitStoreIO},
		{"cancelled", fmt.Errorf("dispatch: recover messages: %w", context.Canceled), ExitStoreIO},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logger, hook := logtest.NewNullLogger()
			d := &daemon{log: logger.WithField("component", "daemon")}
			err := d.storeFailed("cannot read the work left in the message store", tt.err)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != tt.want {
				t.Fatalf("storeFailed(%v) = %v, want exit %d", tt.err, err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the exit error does not wrap %v", tt.err)
			}
			e := hook.LastEntry()
			if e == nil || e.Level != logrus.ErrorLevel || e.Data[logging.FieldMessageID] != logging.MsgStoreError || e.Data[logrus.ErrorKey] != tt.err {
				t.Fatalf("not logged as a store error: %+v", e)
			}
		})
	}
}

// TestUnitRestartsAfterStoreIOErrors: the packaged unit never restarts
// herald after a corrupt store or an invalid configuration (restarting
// fixes neither), and does restart it after a store I/O error.
func TestUnitRestartsAfterStoreIOErrors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "units", "herald.service"))
	if err != nil {
		t.Fatal(err)
	}
	var prevent []string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RestartPreventExitStatus="); ok {
			prevent = append(prevent, strings.Fields(v)...)
		}
	}
	has := func(code int) bool { return slices.Contains(prevent, strconv.Itoa(code)) }
	if !has(ExitStoreCorrupt) || !has(ExitConfig) {
		t.Errorf("RestartPreventExitStatus=%v lacks %d or %d", prevent, ExitStoreCorrupt, ExitConfig)
	}
	if has(ExitStoreIO) {
		t.Errorf("RestartPreventExitStatus=%v holds %d: a transient I/O error would disable auto-restart", prevent, ExitStoreIO)
	}
	if !strings.Contains(string(b), "\nRestart=on-failure\n") {
		t.Error("the unit does not restart herald on failure")
	}
}
