// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"strings"
	"testing"
)

// TestTestSupportStaysInTests: the test helpers (pkg/testsupport/testwait, which
// imports testing) are imported only by tests and by the fakes of
// <name>test packages, never by code that ends up in herald's binary.
func TestTestSupportStaysInTests(t *testing.T) {
	testOnly := []string{module + "/pkg/testsupport/testwait"}
	n := 0
	for _, f := range files(t) {
		for _, imp := range f.imports {
			for _, bad := range testOnly {
				if imp != bad {
					continue
				}
				n++
				if !f.test && !strings.HasSuffix(f.pkg, "test") {
					t.Errorf("%s imports %s: test support belongs in tests and fakes", f.path, imp)
				}
			}
		}
	}
	if n == 0 {
		t.Error("nothing imports pkg/testsupport/testwait: the check checks nothing")
	}
}
