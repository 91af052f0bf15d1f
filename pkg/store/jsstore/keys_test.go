// SPDX-License-Identifier: Apache-2.0

package jsstore_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// Several nodes offering their own key at once all get the one key that
// was stored first; a node asking later gets it too, whatever it offers;
// another name is another key.
func TestSharedKey(t *testing.T) {
	srv := natstest.StartServer(t)
	const nodes = 6
	stores := make([]interface {
		SharedKey(context.Context, string, []byte) ([]byte, error)
	}, nodes)
	for i := range stores {
		stores[i] = open(t, srv.ClientURL(), "keys", 1)
	}
	ctx := context.Background()
	got := make([][]byte, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = stores[i].SharedKey(ctx, "approval-buttons", []byte(fmt.Sprintf("key of node %d", i)))
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("node %d got %q, node 0 got %q", i, got[i], got[0])
		}
	}
	if !bytes.HasPrefix(got[0], []byte("key of node ")) {
		t.Fatalf("shared key %q is nobody's offer", got[0])
	}
	late := open(t, srv.ClientURL(), "keys", 1)
	k, err := late.SharedKey(ctx, "approval-buttons", []byte("late offer"))
	if err != nil || !bytes.Equal(k, got[0]) {
		t.Fatalf("late node: %q, %v; want %q", k, err, got[0])
	}
	m, err := late.SharedKey(ctx, "media", []byte("media offer"))
	if err != nil || string(m) != "media offer" {
		t.Fatalf("another name: %q, %v; want the offer", m, err)
	}
	if _, err := late.SharedKey(ctx, "x", nil); err == nil {
		t.Fatal("an empty offer was accepted")
	}
}
