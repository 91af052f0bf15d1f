// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestBeforeStart: while the daemon waits for its store (backend nats with
// NATS unreachable at start), the dispatcher is built but not started:
// Deliver refuses with ErrUnavailable (the webhook answers 503, pollers
// leave updates unconfirmed), not ErrStopping; the watchdog's Check passes;
// once started, the message the platform redelivers is stored and answered.
func TestBeforeStart(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ad, ag := newFakeAdapter("p"), newFakeAgent()
	d := New(st, ag, map[string]Platform{"p": {Adapter: ad, Policy: allowAll, Idempotent: true}}, Options{InitialBackoff: 10 * time.Millisecond}, quietLog(), metrics.Nop())
	defer d.Close()
	err = d.Deliver(context.Background(), in("1", "c", "u", "hi"))
	if !errors.Is(err, adapter.ErrUnavailable) || errors.Is(err, adapter.ErrStopping) {
		t.Fatalf("Deliver before Start = %v, want ErrUnavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check before Start: %v", err)
	}
	if _, _, err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(context.Background(), in("1", "c", "u", "hi")); err != nil {
		t.Fatalf("Deliver after Start: %v", err)
	}
	testwait.For(t, "the reply", func() bool { return len(ad.Sent()) == 1 })
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check after Start: %v", err)
	}
}
