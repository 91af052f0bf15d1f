// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"net/http"
	"strconv"
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

// ServeBytes writes data as a 200 body with its Content-Length (the
// caller sets the other headers): at once, or one byte per every when
// every is positive (the headers flushed first, so the client sees a
// download start and stall).
func ServeBytes(w http.ResponseWriter, r *http.Request, data []byte, every time.Duration, done <-chan struct{}) {
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if every <= 0 {
		_, _ = w.Write(data)
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	Drip(w, r, data, every, done)
}
