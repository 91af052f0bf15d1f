// SPDX-License-Identifier: Apache-2.0

package webhook

import "time"

// SetWaitTimer replaces the timer that ends a ?wait= request, so that a
// test decides when the wait is over.
func SetWaitTimer(a *Adapter, f func(time.Duration) (<-chan time.Time, func() bool)) {
	a.waitTimer = f
}
