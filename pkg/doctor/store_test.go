// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
)

// TestStoreChecks: doctor FAILs a store the running herald cannot write,
// with the cause, the free space and a fix fitting the cause, and checks
// the free space of the store's file system even when herald is down.
func TestStoreChecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.db")
	cfg := config.Default()
	cfg.Store.Path = path
	since := time.Now().Add(-time.Minute)
	full := &adminapi.StatusReport{Store: &adminapi.StoreReport{Path: path, Since: since, Cause: "disk full", Error: "store: commit: database or disk is full (13)", Unrecorded: 3}}
	checks := storeChecks(cfg, Options{}, full)
	if len(checks) != 2 {
		t.Fatalf("checks: %+v", checks)
	}
	c := checks[0]
	if c.Name != "store" || c.Result != "FAIL" || !strings.Contains(c.Detail, "disk full") || !strings.Contains(c.Detail, " free of ") ||
		!strings.Contains(c.Detail, "database or disk is full") || !strings.Contains(c.Detail, "3 finished turns") || !strings.Contains(c.Fix, "free space on the file system holding "+dir) {
		t.Errorf("unwritable store: %+v", c)
	}
	if c := checks[1]; c.Name != "store free space" || !strings.Contains(c.Detail, " on "+dir) {
		t.Errorf("free space: %+v", c)
	}
	ro := &adminapi.StatusReport{Store: &adminapi.StoreReport{Path: path, Since: since, Cause: "read-only file system"}}
	if c := storeChecks(cfg, Options{}, ro)[0]; c.Result != "FAIL" || !strings.Contains(c.Fix, "writable by the herald user") {
		t.Errorf("read-only store: %+v", c)
	}
	ok := &adminapi.StatusReport{Store: &adminapi.StoreReport{Path: path, Writable: true}}
	if c := storeChecks(cfg, Options{}, ok)[0]; c.Result != "PASS" {
		t.Errorf("writable store: %+v", c)
	}
	// herald not running: only the free space, at the configured path.
	if cs := storeChecks(cfg, Options{}, nil); len(cs) != 1 || cs[0].Name != "store free space" || cs[0].Result == "FAIL" {
		t.Errorf("herald down: %+v", cs)
	}
	cfg.Store.Path = filepath.Join(dir, "missing", "herald.db")
	if cs := storeChecks(cfg, Options{}, nil); len(cs) != 1 || cs[0].Result != "WARN" {
		t.Errorf("missing state directory: %+v", cs)
	}
}

// TestStoreChecksNATS: with the JetStream store doctor has one check,
// "nats", failing with the cause while NATS is unreachable, and no SQLite
// file checks; with herald down it checks nothing of the store.
func TestStoreChecksNATS(t *testing.T) {
	cfg := config.Default()
	cfg.Store.Backend = "nats"
	down := &adminapi.StatusReport{Store: &adminapi.StoreReport{Backend: "nats", Path: "nats://10.0.0.1:4222", Since: time.Now().Add(-time.Minute), Cause: "NATS unreachable", Error: "i/o timeout"}}
	cs := storeChecks(cfg, Options{}, down)
	if len(cs) != 1 || cs[0].Name != "nats" || cs[0].Result != "FAIL" || !strings.Contains(cs[0].Detail, "NATS unreachable") ||
		!strings.Contains(cs[0].Detail, "i/o timeout") || !strings.Contains(cs[0].Fix, "store.nats.urls") {
		t.Errorf("NATS down: %+v", cs)
	}
	up := &adminapi.StatusReport{Store: &adminapi.StoreReport{Backend: "nats", Path: "herald_store at nats://10.0.0.1:4222", Writable: true}}
	if cs := storeChecks(cfg, Options{}, up); len(cs) != 1 || cs[0].Name != "nats" || cs[0].Result != "PASS" {
		t.Errorf("NATS up: %+v", cs)
	}
	if cs := storeChecks(cfg, Options{}, nil); len(cs) != 0 {
		t.Errorf("herald down: %+v", cs)
	}
}
