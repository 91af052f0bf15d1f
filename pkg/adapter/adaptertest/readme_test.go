// SPDX-License-Identifier: Apache-2.0

package adaptertest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

// TestReadmeChecks: each value missing from the text is one failure that
// names it; present values none.
func TestReadmeChecks(t *testing.T) {
	text := "| `malformed` | 400 |\nDefault `10s`, codes `4004`."
	r := &recorder{TB: t}
	ReadmeShows(r, text, "the default", "10s", "4004", "30s")
	ReadmeLists(r, text, "the reason", "malformed", "10s")
	if len(r.errs) != 2 || !strings.Contains(r.errs[0], `"30s"`) || !strings.Contains(r.errs[1], `"10s"`) {
		t.Fatalf("failures %q, want one for 30s and one for the 10s row", r.errs)
	}
	if got := Keys(map[int]bool{90018: true, 130101: true}); strings.Join(got, ",") != "130101,90018" {
		t.Fatalf("Keys = %v", got)
	}
}
