// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// TestNATSBackend: with NATS unreachable every call of the store fails at
// once with ErrUnavailable, note and report say why, and the state change
// is reported; retry opens the store once NATS answers, and the store then
// works and reports connected.
func TestNATSBackend(t *testing.T) {
	srv := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	proxy.Cut()
	l := logrus.New()
	l.SetOutput(io.Discard)
	states := make(chan bool, 8)
	bk := newNATSBackend(config.StoreNATS{URLs: []string{proxy.URL()}, Replicas: 1, Prefix: "t"}, "herald-test", logrus.NewEntry(l), func(ok bool) { states <- ok })
	defer bk.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := bk.connect(ctx); err == nil {
		t.Fatal("connect through a cut proxy succeeded")
	}
	if _, err := bk.Pending(ctx); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("Pending before open: %v, want ErrUnavailable", err)
	}
	if n := bk.note(); !strings.HasPrefix(n, "message store cannot be written (NATS unreachable: "+proxy.URL()) {
		t.Fatalf("note: %q", n)
	}
	if ok := <-states; ok {
		t.Fatal("state change reported writable")
	}
	if r := bk.report(); r.Backend != "nats" || r.Writable || r.Cause != "NATS unreachable" || r.Error == "" {
		t.Fatalf("report: %+v", r)
	}

	proxy.Restore()
	if !bk.retry(ctx) {
		t.Fatal("retry gave up")
	}
	if n := bk.note(); n != "" {
		t.Fatalf("note once open: %q", n)
	}
	if ok := <-states; !ok {
		t.Fatal("no writable state change")
	}
	if _, err := bk.Pending(ctx); err != nil {
		t.Fatalf("Pending once open: %v", err)
	}
	if r := bk.report(); !r.Writable || r.Path != "t_store at "+proxy.URL() {
		t.Fatalf("report once open: %+v", r)
	}
}

// TestNATSBackendRetryEnds: retry returns false when its context ends.
func TestNATSBackendRetryEnds(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	bk := newNATSBackend(config.StoreNATS{URLs: []string{"nats://127.0.0.1:1"}, Replicas: 1}, "herald-test", logrus.NewEntry(l), nil)
	defer bk.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if bk.retry(ctx) {
		t.Fatal("retry succeeded without NATS")
	}
}
