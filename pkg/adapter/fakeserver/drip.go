// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"net/http"
	"time"
)

// Drip writes data one byte per interval, flushing each, until it is all
// written, the client goes away or stop is closed: a download that does not
// end in any useful time. Headers must be set before.
func Drip(w http.ResponseWriter, r *http.Request, data []byte, interval time.Duration, stop <-chan struct{}) {
	fl, _ := w.(http.Flusher)
	for i := range data {
		if _, err := w.Write(data[i : i+1]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-time.After(interval):
		case <-r.Context().Done():
			return
		case <-stop:
			return
		}
	}
}
