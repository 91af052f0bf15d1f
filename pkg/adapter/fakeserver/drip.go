// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"net/http"
	"time"
)

// Drip writes data one byte per every, flushing each: a slow body. It
// returns when all is written, the client goes away or done is closed (the
// fake closing). The status and headers must be written before.
func Drip(w http.ResponseWriter, r *http.Request, data []byte, every time.Duration, done <-chan struct{}) {
	rc := http.NewResponseController(w)
	t := time.NewTicker(every)
	defer t.Stop()
	for _, b := range data {
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		if _, err := w.Write([]byte{b}); err != nil {
			return
		}
		_ = rc.Flush()
	}
}
