// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"math"
	"time"

	"github.com/sirupsen/logrus"
)

// MaxRetryAfter caps a delay a platform asks for before the next request
// (Retry-After, Telegram's retry_after, Feishu's x-ogw-ratelimit-reset,
// Discord's retry_after): a broken or hostile server must not stall intake
// or a reply for days. It is the webhook's cap too.
const MaxRetryAfter = time.Hour

// BoundWait converts a delay or interval a platform sent, n units, into a
// duration within [lo, hi]. NaN, infinities and values whose duration would
// overflow are clamped as well (NaN to lo); clamped reports whether the
// value was outside the bounds. Adapters log a clamp with LogClamp.
func BoundWait(n float64, unit, lo, hi time.Duration) (d time.Duration, clamped bool) {
	if math.IsNaN(n) {
		return lo, true
	}
	f := n * float64(unit)
	switch {
	case f < float64(lo):
		return lo, true
	case f > float64(hi):
		return hi, true
	}
	return time.Duration(f), false
}

// LogClamp records that the platform's value given for what (such as
// "Retry-After of chat.postMessage") was replaced by used.
func LogClamp(log *logrus.Entry, what string, given any, used time.Duration) {
	log.WithFields(logrus.Fields{"given": given, "used": used.String()}).
		Warnf("%s: the platform's value %v is out of bounds; using %v", what, given, used)
}
