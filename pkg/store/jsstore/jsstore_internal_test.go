// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"

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

// A server that goes silent behind a proxy that drops every byte (the
// connection stays open) is noticed by the pings: the client leaves the
// connected state instead of waiting for writes to time out one by one.
func TestDialNoticesSilentServer(t *testing.T) {
	defer func(d time.Duration) { pingInterval = d }(pingInterval)
	pingInterval = 100 * time.Millisecond
	srv := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	l := logrus.New()
	l.SetOutput(io.Discard)
	nc, err := Dial(config.StoreNATS{URLs: []string{proxy.URL()}}, "herald-test", 5*time.Second, logrus.NewEntry(l))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	proxy.Cut()
	testwait.For(t, "the client to notice the silent server", func() bool { return nc.Status() != nats.CONNECTED })
}
