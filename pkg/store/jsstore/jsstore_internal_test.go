// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestNoPeers: only JetStream's "no suitable peers for placement", wrapped
// or not, is the temporary placement failure Open retries.
func TestNoPeers(t *testing.T) {
	placement := &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}
	if !noPeers(placement) || !noPeers(fmt.Errorf("jsstore: bucket x: %w", placement)) {
		t.Fatal("the placement failure is not recognised")
	}
	if noPeers(&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest}) || noPeers(errors.New("no suitable peers")) || noPeers(nil) {
		t.Fatal("another error taken for the placement failure")
	}
}
