// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops its adapters and closes its servers; anything still
// running afterwards (a handler goroutine, a keep-alive connection of the
// outbound client) is a leak.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
