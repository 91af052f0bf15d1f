// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
)

// pingInterval is how often the client pings its server; a variable for
// tests.
var pingInterval = 5 * time.Second

// Dial connects to the NATS servers of store.nats, authenticated as it
// says (a creds file, an nkey seed or a token, each read from its secret
// reference), over TLS when tls_ca or a client certificate is set. The
// attempt is bounded by timeout; once connected the client reconnects on
// its own, without limit, and logs each loss and recovery to log; while
// it is disconnected a publish fails at once (no reconnect buffer).
func Dial(cfg config.StoreNATS, name string, timeout time.Duration, log *logrus.Entry) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// A write made while disconnected fails at once instead of being
		// sent after the reconnect: a late lease Create (pkg/cluster)
		// could otherwise take a key nobody renews, and a late store write
		// would land after its caller gave up on it.
		nats.ReconnectBufSize(-1),
		// A server that stops answering without closing the connection
		// (a host gone, a network that drops packets) is noticed after
		// two unanswered pings (10 to 15 s) and the client moves to another server;
		// the client's defaults (2 minutes, 2 pings) would take up to six
		// minutes.
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.WithError(err).Warn("NATS connection lost; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.WithField("server", nc.ConnectedUrlRedacted()).Info("NATS connection restored")
		}),
	}
	switch cfg.Auth {
	case "creds":
		p, err := cfg.Secret.Path()
		if err != nil {
			return nil, fmt.Errorf("jsstore: store.nats.secret: %w", err)
		}
		opts = append(opts, nats.UserCredentials(p))
	case "nkey":
		p, err := cfg.Secret.Path()
		if err != nil {
			return nil, fmt.Errorf("jsstore: store.nats.secret: %w", err)
		}
		o, err := nats.NkeyOptionFromSeed(p)
		if err != nil {
			return nil, fmt.Errorf("jsstore: store.nats.secret: %w", err)
		}
		opts = append(opts, o)
	case "token":
		v, err := cfg.Secret.Read()
		if err != nil {
			return nil, fmt.Errorf("jsstore: store.nats.secret: %w", err)
		}
		opts = append(opts, nats.Token(v.Reveal()))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		key, err := cfg.TLSKey.Path()
		if err != nil {
			return nil, fmt.Errorf("jsstore: store.nats.tls_key: %w", err)
		}
		opts = append(opts, nats.ClientCert(cfg.TLSCert, key))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("jsstore: connect to %s: %w", strings.Join(cfg.URLs, ", "), err)
	}
	return nc, nil
}
