// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adminapi"
)

// A command that finds no herald on the admin socket exits
// EX_UNAVAILABLE, as `herald reload` always has.
func TestExitCodeNotRunning(t *testing.T) {
	err := fmt.Errorf("reload: %w", &adminapi.NotRunningError{Socket: "/run/herald/admin.sock"})
	if got := ExitCode(err); got != ExitRunning {
		t.Errorf("ExitCode(%v) = %d, want %d", err, got, ExitRunning)
	}
}
