// SPDX-License-Identifier: Apache-2.0

package jsstore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/store/jsstore"
)

// Dial authenticates with the token from store.nats.secret; a wrong token
// is refused with a clear error.
func TestDialToken(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Authorization: "s3cret-token", NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("server not ready")
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	log := logrus.NewEntry(l)
	cfg := config.StoreNATS{URLs: []string{srv.ClientURL()}, Auth: "token", Secret: secret.Ref{File: bad}}
	if nc, err := jsstore.Dial(cfg, "herald-test", 5*time.Second, log); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong token")
	}
	cfg.Secret.File = good
	nc, err := jsstore.Dial(cfg, "herald-test", 5*time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.Opts.ReconnectBufSize != -1 {
		t.Errorf("reconnect buffer %d bytes: a write made while disconnected would be sent after the reconnect", nc.Opts.ReconnectBufSize)
	}
	s, err := jsstore.Open(context.Background(), nc, jsstore.Options{Prefix: "dial", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.AddInbound(context.Background(), "k", inbound("e1"), store.Pending); err != nil {
		t.Fatal(err)
	}
}
