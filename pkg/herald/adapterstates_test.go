// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// TestSharedStates: two nodes' States of one leased platform instance on
// one JetStream store. Before the store opens a call fails with
// ErrUnavailable. A node's file written before cluster mode is used once:
// loaded, copied into the store and removed; after that the store's value
// wins over another node's file. What one node saves the other loads, a
// value over the caller's limit is an error, and a removed value is gone.
func TestSharedStates(t *testing.T) {
	srv := natstest.StartServer(t)
	l := logrus.New()
	l.SetOutput(io.Discard)
	log := logrus.NewEntry(l)
	node := func() (*natsBackend, *sharedStates) {
		bk := newNATSBackend(config.StoreNATS{URLs: []string{srv.ClientURL()}, Replicas: 1, Prefix: "shared"}, "herald-test", log, func(bool) {})
		t.Cleanup(func() { bk.Close() })
		return bk, &sharedStates{open: bk.storeStates, instance: "mm", local: adapter.DirStates(t.TempDir()), log: log}
	}
	bkA, a := node()
	bkB, b := node()

	if err := a.Save("cursor.json", []byte("x")); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("Save before the store opened: %v, want ErrUnavailable", err)
	}
	if _, _, err := b.Load("cursor.json", 1024); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("Load before the store opened: %v, want ErrUnavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, bk := range []*natsBackend{bkA, bkB} {
		if err := bk.connect(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// B's Load failed: its Saves are refused, so that its position (the
	// current one) never replaces the one in the store.
	if err := b.Save("cursor.json", []byte("from a failed start")); !errors.Is(err, errNotLoaded) {
		t.Fatalf("Save after a failed Load: %v, want errNotLoaded", err)
	}

	// Both nodes have a file from before cluster mode; A loads first.
	fileA, fileB := filepath.Join(string(a.local), "cursor.json"), filepath.Join(string(b.local), "cursor.json")
	for path, content := range map[string]string{fileA: "from A\n", fileB: "older, from B\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := a.Load("cursor.json", 1024); !ok || err != nil || string(got) != "from A\n" {
		t.Fatalf("A's first Load: %q %v %v, want its file", got, ok, err)
	}
	if _, err := os.Stat(fileA); !os.IsNotExist(err) {
		t.Fatalf("A's file after it moved into the store: %v", err)
	}
	if got, ok, err := b.Load("cursor.json", 1024); !ok || err != nil || string(got) != "from A\n" {
		t.Fatalf("B's Load: %q %v %v, want the store's value, not B's file", got, ok, err)
	}

	if err := b.Save("cursor.json", []byte("saved by B")); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Load("cursor.json", 1024); !ok || err != nil || string(got) != "saved by B" {
		t.Fatalf("A's Load after B saved: %q %v %v", got, ok, err)
	}
	if _, _, err := a.Load("cursor.json", 4); err == nil {
		t.Fatal("a value over the limit loaded")
	}
	// Another instance's value is its own.
	other := &sharedStates{open: bkA.storeStates, instance: "mm2", local: adapter.DirStates(t.TempDir()), log: log}
	if _, ok, err := other.Load("cursor.json", 1024); ok || err != nil {
		t.Fatalf("another instance loads %v %v, want nothing", ok, err)
	}

	if err := a.Remove("cursor.json"); err != nil {
		t.Fatal(err)
	}
	os.Remove(fileB)
	if _, ok, err := b.Load("cursor.json", 1024); ok || err != nil {
		t.Fatalf("B's Load after A removed it: %v %v", ok, err)
	}
	if got := adapter.StateWhere(a, "cursor.json"); got != "cluster store, platform mm: cursor.json" {
		t.Fatalf("StateWhere = %q", got)
	}
}

// TestSharedStatesSaveBounded: a Save or Remove gives the store its own
// bound, stateSaveTimeout, shorter than the store's 10 s timeout: an
// adapter that saves while it stops keeps within its stop bound.
func TestSharedStatesSaveBounded(t *testing.T) {
	st := &deadlineStore{}
	l := logrus.New()
	l.SetOutput(io.Discard)
	s := &sharedStates{open: func() (adapterStateStore, error) { return st, nil }, instance: "discord", log: logrus.NewEntry(l)}
	for what, call := range map[string]func() error{
		"Save":   func() error { return s.Save("session.json", []byte("{}")) },
		"Remove": func() error { return s.Remove("session.json") },
	} {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		// The deadline was set during the call, so at most
		// stateSaveTimeout after its end.
		if left := time.Until(st.deadline); !st.hadDeadline || left > stateSaveTimeout {
			t.Errorf("%s: the store call's deadline is %v after the call ended (set: %v), want at most stateSaveTimeout (%v)",
				what, left, st.hadDeadline, stateSaveTimeout)
		}
	}
}

// deadlineStore records the deadline of the last write it was given.
type deadlineStore struct {
	deadline    time.Time
	hadDeadline bool
}

func (d *deadlineStore) AdapterState(context.Context, string, string) ([]byte, bool, error) {
	return nil, false, nil
}

func (d *deadlineStore) SetAdapterState(ctx context.Context, _, _ string, _ []byte) error {
	d.deadline, d.hadDeadline = ctx.Deadline()
	return nil
}

func (d *deadlineStore) DeleteAdapterState(ctx context.Context, _, _ string) error {
	d.deadline, d.hadDeadline = ctx.Deadline()
	return nil
}

// TestPlatformStates: in cluster mode a leased platform's position is
// shared through the store and an every-node platform's stays in its
// directory; without cluster mode every platform keeps files.
func TestPlatformStates(t *testing.T) {
	bk := newNATSBackend(config.StoreNATS{URLs: []string{"nats://127.0.0.1:1"}}, "herald-test", logrus.NewEntry(logrus.New()), func(bool) {})
	defer bk.Close()
	cfg := &config.Config{}
	for _, typ := range []string{"mattermost", "whatsapp"} {
		if s := platformStates(cfg, bk, "p", typ, "/d", nil); s != adapter.DirStates("/d") {
			t.Errorf("single node, %s: %#v, want files in the directory", typ, s)
		}
	}
	cfg.Cluster.Enabled = true
	if s, ok := platformStates(cfg, bk, "p", "mattermost", "/d", nil).(*sharedStates); !ok || s.instance != "p" || s.local != "/d" {
		t.Errorf("cluster, mattermost: %#v, want the store", s)
	}
	if s := platformStates(cfg, bk, "p", "whatsapp", "/d", nil); s != adapter.DirStates("/d") {
		t.Errorf("cluster, whatsapp (every node): %#v, want files in the directory", s)
	}
}
