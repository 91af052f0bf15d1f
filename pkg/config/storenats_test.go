// SPDX-License-Identifier: Apache-2.0

package config

import (
	"strings"
	"testing"
)

func TestStoreNATSDefaults(t *testing.T) {
	c, err := Parse("herald.yaml", []byte("store:\n  retention: 24h\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Store.NATS
	if c.Store.Backend != "sqlite" || n.Auth != "none" || n.Replicas != 3 || n.Prefix != "herald" {
		t.Fatalf("defaults: backend %q, nats %+v", c.Store.Backend, n)
	}
	c, err = Parse("herald.yaml", []byte(`store:
  backend: nats
  nats:
    urls: [nats://10.0.0.1:4222, "tls://nats-2.example:4222"]
    auth: creds
    secret: {credential: nats-creds}
    tls_ca: /etc/herald/nats-ca.pem
    tls_cert: /etc/herald/nats-client.pem
    tls_key: {file: /etc/herald/nats-client.key}
    replicas: 5
    prefix: team-a
cluster:
  enabled: true
  node_id: n1
`))
	if err != nil {
		t.Fatal(err)
	}
	n = c.Store.NATS
	if c.Store.Backend != "nats" || len(n.URLs) != 2 || n.Secret.Credential != "nats-creds" || n.TLSKey.File != "/etc/herald/nats-client.key" ||
		n.Replicas != 5 || n.Prefix != "team-a" {
		t.Fatalf("parsed: %q %+v", c.Store.Backend, n)
	}
}

func TestStoreNATSErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"store:\n  backend: etcd\n", `store.backend: "etcd" is not one of sqlite, nats`},
		{"store:\n  backend: nats\n", "store.nats.urls: required with backend nats"},
		{"store:\n  nats:\n    urls: [http://x:4222]\n", `store.nats.urls: entry 0 ("http://x:4222") is not a nats:// or tls:// URL`},
		{"store:\n  nats:\n    urls: [nats://x]\n", "is not a nats:// or tls:// URL with host and port"},
		{"store:\n  nats:\n    auth: token\n", "store.nats.secret: required with auth token"},
		{"store:\n  nats:\n    auth: password\n", `store.nats.auth: "password" is not one of none, creds, nkey, token`},
		{"store:\n  nats:\n    secret: {credential: x}\n", "store.nats.secret: set, but auth is none"},
		{"store:\n  nats:\n    auth: nkey\n    secret: {file: relative/seed}\n", "store.nats.secret: file \"relative/seed\" must be an absolute path"},
		{"store:\n  nats:\n    tls_ca: ca.pem\n", `store.nats.tls_ca: "ca.pem" must be an absolute path`},
		{"store:\n  nats:\n    tls_cert: /etc/c.pem\n", "store.nats.tls_cert: tls_cert and tls_key go together"},
		{"store:\n  nats:\n    replicas: 2\n", "store.nats.replicas: 2 is not one of 1, 3, 5"},
		{"store:\n  nats:\n    prefix: a.b\n", `store.nats.prefix: "a.b": 1 to 32 letters`},
	}
	for _, tt := range tests {
		_, err := Parse("herald.yaml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.src, err, tt.want)
		}
	}
}
