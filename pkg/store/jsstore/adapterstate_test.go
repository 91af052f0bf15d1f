// SPDX-License-Identifier: Apache-2.0

package jsstore_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/store/jsstore"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// TestAdapterState: the state an adapter saves on one node is read by
// another node's store on the same bucket; instances and names are kept
// apart (any string is a valid instance or name), a deleted state is
// gone, a value over MaxAdapterState is refused with an error that says
// so, and a closed store refuses calls.
func TestAdapterState(t *testing.T) {
	srv := natstest.StartServer(t)
	a := open(t, srv.ClientURL(), "ast", 1)
	b := open(t, srv.ClientURL(), "ast", 1)
	ctx := context.Background()

	if _, ok, err := b.AdapterState(ctx, "mattermost", "cursor.json"); ok || err != nil {
		t.Fatalf("before any save: %v %v", ok, err)
	}
	if err := a.SetAdapterState(ctx, "mattermost", "cursor.json", []byte(`{"last_post_at":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.SetAdapterState(ctx, "mattermost", "cursor.json", []byte(`{"last_post_at":2}`)); err != nil {
		t.Fatal(err)
	}
	// Odd instance and name strings: dots, spaces, unicode.
	odd := map[[2]string]string{
		{"matrix.main", "sync.json"}: "matrix",
		{"mattermost", "sync.json"}:  "other name",
		{"bot é 1", "a.b c"}:         "odd",
	}
	for k, v := range odd {
		if err := a.SetAdapterState(ctx, k[0], k[1], []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := b.AdapterState(ctx, "mattermost", "cursor.json"); !ok || err != nil || string(got) != `{"last_post_at":2}` {
		t.Fatalf("the other node reads %q %v %v, want the last value", got, ok, err)
	}
	for k, v := range odd {
		if got, ok, err := b.AdapterState(ctx, k[0], k[1]); !ok || err != nil || string(got) != v {
			t.Fatalf("%q: %q %v %v, want %q", k, got, ok, err, v)
		}
	}

	if err := b.DeleteAdapterState(ctx, "mattermost", "cursor.json"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.AdapterState(ctx, "mattermost", "cursor.json"); ok || err != nil {
		t.Fatalf("after delete: %v %v", ok, err)
	}
	if err := b.DeleteAdapterState(ctx, "mattermost", "never-saved"); err != nil {
		t.Fatalf("deleting what is not there: %v", err)
	}

	// The size cap: the largest value is stored, one byte more is not.
	big := bytes.Repeat([]byte("x"), jsstore.MaxAdapterState)
	if err := a.SetAdapterState(ctx, "matrix.main", "sync.json", big); err != nil {
		t.Fatalf("a value of MaxAdapterState bytes: %v", err)
	}
	err := a.SetAdapterState(ctx, "matrix.main", "sync.json", append(big, 'x'))
	if err == nil || !strings.Contains(err.Error(), "more than the 262144") {
		t.Fatalf("a value over the cap: %v", err)
	}
	if got, _, _ := b.AdapterState(ctx, "matrix.main", "sync.json"); len(got) != jsstore.MaxAdapterState {
		t.Fatalf("after a refused write the value has %d bytes, want the earlier %d", len(got), jsstore.MaxAdapterState)
	}

	a.Close()
	if _, _, err := a.AdapterState(ctx, "mattermost", "cursor.json"); !errors.Is(err, jsstore.ErrClosed) {
		t.Fatalf("read on a closed store: %v", err)
	}
	if err := a.SetAdapterState(ctx, "mattermost", "cursor.json", nil); !errors.Is(err, jsstore.ErrClosed) {
		t.Fatalf("write on a closed store: %v", err)
	}
}

// TestAdapterStateBounded: with NATS cut off (a proxy that blackholes),
// reading and writing an adapter state fail with the store's timeout
// instead of waiting for ever.
func TestAdapterStateBounded(t *testing.T) {
	srv := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	s, err := jsstore.Open(context.Background(), connect(t, proxy.URL()), jsstore.Options{Prefix: "astcut", Replicas: 1, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	proxy.Cut()
	ctx := context.Background()
	if err := s.SetAdapterState(ctx, "discord", "session.json", []byte("{}")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write while cut: %v, want the timeout", err)
	}
	if _, _, err := s.AdapterState(ctx, "discord", "session.json"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read while cut: %v, want the timeout", err)
	}
}
