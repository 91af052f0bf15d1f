// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"log"
	"strings"

	"github.com/sirupsen/logrus"
)

// newStdLogger adapts logrus for net/http's ErrorLog (TLS handshake errors,
// panics in handlers, Accept errors), at warning level.
func newStdLogger(e *logrus.Entry) *log.Logger {
	return log.New(stdWriter{e}, "", 0)
}

type stdWriter struct{ e *logrus.Entry }

func (w stdWriter) Write(p []byte) (int, error) {
	w.e.Warn(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
