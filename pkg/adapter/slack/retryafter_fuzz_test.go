// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"io"
	"math"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// FuzzRetryAfter: a Retry-After that Slack (or anything answering in its
// place) sends is either refused or read as a number of seconds that is
// not negative, and the delay herald then waits lies in
// [0, adapter.MaxRetryAfter], however large the number (the seeds in
// testdata/fuzz once overflowed into negative waits).
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{
		"0", "1", "30", " 7 ", "-1", "1.5", "+3", "2592000", // 30 days
		"18446744073709551616", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 2094 08:49:37 GMT", "soon", "",
	} {
		f.Add(s)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	w := &webAPI{log: logrus.NewEntry(log)}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		secs, ok := parseRetryAfter(v, now)
		if ok && (secs < 0 || math.IsNaN(secs)) || !ok && secs != 0 {
			t.Fatalf("Retry-After %q read as %v seconds, ok=%v", v, secs, ok)
		}
		d, ok := w.retryAfter("chat.postMessage", v)
		if ok && (d < 0 || d > adapter.MaxRetryAfter) || !ok && d != 0 {
			t.Fatalf("Retry-After %q gave %v, ok=%v", v, d, ok)
		}
	})
}
