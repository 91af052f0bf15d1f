// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store/jsstore"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// keyNode is a daemon with its own state_dir, media and dispatcher, as
// it is when startWork shares the keys.
func keyNode(t *testing.T) (*daemon, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("herald.yaml", []byte("state_dir: "+dir+"\nlisten:\n  http: 127.0.0.1:8089\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := buildMedia(cfg, metrics.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bk, err := buttonKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{media: m}
	d.disp = dispatch.New(nil, nil, nil, dispatch.Options{ButtonKey: bk, Media: m}, logrus.NewEntry(logrus.New()), metrics.Nop())
	return d, dir
}

// A link signed by one node verifies on another once both share the keys;
// the first node's own keys become the cluster's (so a single herald
// turned into a cluster keeps its buttons and links valid).
func TestShareKeys(t *testing.T) {
	srv := natstest.StartServer(t)
	ks := func() *jsstore.Store {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		s, err := jsstore.Open(context.Background(), nc, jsstore.Options{Prefix: "keys", Replicas: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, dirA := keyNode(t)
	b, dirB := keyNode(t)
	item, err := a.media.Store.Put(t.Context(), bytes.NewReader([]byte("%PDF-1.4 report")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.media.Store.Put(t.Context(), bytes.NewReader([]byte("%PDF-1.4 report")), 1<<20); err != nil {
		t.Fatal(err)
	}
	tok, err := a.media.Signer.Token(item.SHA256, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, reason := b.media.Signer.Verify(tok); reason != "bad_mac" {
		t.Fatalf("before sharing, node b's verdict on node a's link: %q, want bad_mac", reason)
	}
	sa, sb := ks(), ks()
	if err := a.shareKeys(t.Context(), sa, dirA); err != nil {
		t.Fatal(err)
	}
	if err := b.shareKeys(t.Context(), sb, dirB); err != nil {
		t.Fatal(err)
	}
	if sha, reason := b.media.Signer.Verify(tok); reason != "" || sha != item.SHA256 {
		t.Fatalf("after sharing, node b refuses node a's link: %q", reason)
	}
	for file, name := range map[string]string{"approval-buttons.key": sharedButtonKey, "media.key": sharedMediaKey} {
		own, err := os.ReadFile(filepath.Join(dirA, file))
		if err != nil {
			t.Fatal(err)
		}
		shared, err := sb.SharedKey(t.Context(), name, []byte("another"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(shared, own) {
			t.Fatalf("the shared %s key is not the first node's own", name)
		}
	}
	// A node whose own key differs signs with the shared one from now on.
	tokB, err := b.media.Signer.Token(item.SHA256, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, reason := a.media.Signer.Verify(tokB); reason != "" {
		t.Fatalf("node a refuses node b's link: %q", reason)
	}
	if err := b.media.Signer.SetKey([]byte("short")); err == nil {
		t.Fatal("a short media key was accepted")
	}
}

var _ keyStore = (*jsstore.Store)(nil)
