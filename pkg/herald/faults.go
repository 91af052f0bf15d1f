// SPDX-License-Identifier: Apache-2.0

//go:build !heraldtest

package herald

import "fmt"

// armFaults refuses a configuration that asks for fault injection: the
// production build has none (see faults_heraldtest.go), and a hook that is
// silently ignored would make a test pass for the wrong reason.
func (d *daemon) armFaults() (start func(), err error) {
	if d.cfg.Fault.WedgeMainLoopAfter != 0 {
		return nil, fmt.Errorf("%s: fault.wedge_main_loop_after: fault injection exists only in test builds (go build -tags heraldtest)", d.cfg.File)
	}
	return func() {}, nil
}
