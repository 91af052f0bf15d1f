// SPDX-License-Identifier: Apache-2.0

//go:build heraldtest

package herald

import "time"

// armFaults checks the fault injections the configuration asks for and
// returns what starts them, called just before the main loop. Test builds
// only (go build -tags heraldtest).
//
// fault.wedge_main_loop_after wedges the main loop that long after READY=1:
// it hands the loop a reload whose result nobody receives (a nil done
// channel), so the loop blocks forever sending it, answers no liveness
// probe again, and the watchdog stops pinging. The loop itself has no
// fault code: it is stuck the way a real bug would leave it, in a call
// that never returns.
func (d *daemon) armFaults() (start func(), err error) {
	w := d.cfg.Fault.WedgeMainLoopAfter
	if w <= 0 {
		return func() {}, nil
	}
	return func() {
		d.log.WithField("after", w).Warn("fault injection: the main loop will wedge")
		go func() {
			t := time.NewTimer(w)
			defer t.Stop()
			select {
			case <-t.C:
			case <-d.stopping:
				return
			}
			select {
			case d.reloads <- reloadRequest{}:
				d.log.Error("fault injection: main loop wedged; the watchdog will stop pinging")
			case <-d.stopping:
			}
		}()
	}, nil
}
