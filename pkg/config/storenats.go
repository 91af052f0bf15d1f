// SPDX-License-Identifier: Apache-2.0

package config

import (
	"net/url"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/heraldgw/herald/pkg/secret"
)

// StoreNATS configures the JetStream store (store.backend: nats), for
// cluster mode: several herald nodes share one NATS JetStream cluster.
type StoreNATS struct {
	// URLs of the NATS servers (nats:// or tls://, host and port).
	// Required with backend nats.
	URLs []string `yaml:"urls"`
	// Auth chooses how herald authenticates: none, creds (a credentials
	// file: user JWT and nkey seed), nkey (an nkey seed) or token.
	// Default none.
	Auth string `yaml:"auth"`
	// Secret is the creds file, nkey seed or token (a credential or a
	// file, never inline). Required unless auth is none.
	Secret secret.Ref `yaml:"secret"`
	// TLSCA is a PEM file of the certificate authorities that sign the
	// servers' certificates; setting it requires TLS.
	TLSCA string `yaml:"tls_ca"`
	// TLSCert is a PEM client certificate, for servers that verify
	// clients; it needs tls_key.
	TLSCert string `yaml:"tls_cert"`
	// TLSKey is the client certificate's private key (a secret reference).
	TLSKey secret.Ref `yaml:"tls_key"`
	// Replicas of the store's stream: 1, 3 or 5. Default 3 (a write is
	// acknowledged once two of three servers stored it).
	Replicas int `yaml:"replicas"`
	// Prefix starts the names of herald's streams and buckets, so that
	// several herald clusters can share one NATS. Default herald.
	Prefix string `yaml:"prefix"`
}

var natsPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (c *Config) storeNATSDefaults() {
	def(&c.Store.Backend, "sqlite")
	n := &c.Store.NATS
	def(&n.Auth, "none")
	defInt(&n.Replicas, 3)
	def(&n.Prefix, "herald")
}

func (c *Config) validateStoreNATS(add func(key, format string, args ...any)) {
	if !oneOf(c.Store.Backend, "sqlite", "nats") {
		add("store.backend", "%q is not one of sqlite, nats", c.Store.Backend)
	}
	n := &c.Store.NATS
	if c.Store.Backend == "nats" && len(n.URLs) == 0 {
		add("store.nats.urls", "required with backend nats")
	}
	for i, u := range n.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Hostname() == "" || p.Port() == "" || p.Path != "" {
			add("store.nats.urls", "entry %d (%q) is not a nats:// or tls:// URL with host and port", i, u)
		}
	}
	switch n.Auth {
	case "none":
		if !n.Secret.IsZero() {
			add("store.nats.secret", "set, but auth is none (set auth to creds, nkey or token)")
		}
	case "creds", "nkey", "token":
		if n.Secret.IsZero() {
			add("store.nats.secret", "required with auth %s", n.Auth)
		} else if err := n.Secret.Validate(); err != nil {
			add("store.nats.secret", "%v", err)
		}
	default:
		add("store.nats.auth", "%q is not one of none, creds, nkey, token", n.Auth)
	}
	for key, p := range map[string]string{"store.nats.tls_ca": n.TLSCA, "store.nats.tls_cert": n.TLSCert} {
		if p != "" && !filepath.IsAbs(p) {
			add(key, "%q must be an absolute path", p)
		}
	}
	if (n.TLSCert == "") != n.TLSKey.IsZero() {
		add("store.nats.tls_cert", "tls_cert and tls_key go together")
	}
	if !n.TLSKey.IsZero() {
		if err := n.TLSKey.Validate(); err != nil {
			add("store.nats.tls_key", "%v", err)
		}
	}
	if !slices.Contains([]int{1, 3, 5}, n.Replicas) {
		add("store.nats.replicas", "%d is not one of 1, 3, 5", n.Replicas)
	}
	if !natsPrefixRE.MatchString(n.Prefix) {
		add("store.nats.prefix", "%q: 1 to 32 letters, digits, '-' or '_'", n.Prefix)
	}
}
