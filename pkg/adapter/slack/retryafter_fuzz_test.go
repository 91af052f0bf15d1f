// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"testing"
	"time"
)

// FuzzRetryAfter: a Retry-After that Slack (or anything answering in its
// place) sends is either refused or read as a delay that is not negative,
// however large the number of seconds. Seeds named issue12-* reproduce the
// rate-limit waits of a security review.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{
		"0", "1", "30", " 7 ", "-1", "1.5", "+3", "2592000", // 30 days
		"Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 2094 08:49:37 GMT", "soon", "",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if ok && d < 0 {
			t.Fatalf("Retry-After %q gave %v", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("Retry-After %q refused with %v", v, d)
		}
	})
}
