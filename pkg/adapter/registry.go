// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"fmt"
	"sort"
	"sync"
)

// Factory builds an adapter from its decoded configuration. conf is the value
// returned by the type's NewConfig, filled from YAML and validated. It must
// not do network I/O or start goroutines. Adapters do not write one: Define
// makes it from a typed constructor.
type Factory func(conf any, env Env) (Adapter, error)

// Define describes an adapter type from its typed parts: newConfig returns a
// configuration with defaults filled in, build makes the adapter from it
// (validate, read credentials; no network I/O, no goroutine). The caller
// sets the optional fields of the result and passes it to Register:
//
//	func init() {
//		t := adapter.Define("telegram", NewConfig, New)
//		t.DeduplicatesSends = false
//		adapter.Register(t)
//	}
func Define[C any, A Adapter](name string, newConfig func() *C, build func(*C, Env) (A, error)) Type {
	return Type{
		Name:      name,
		NewConfig: func() any { return newConfig() },
		New: func(conf any, env Env) (Adapter, error) {
			c, ok := conf.(*C)
			if !ok || c == nil {
				return nil, fmt.Errorf("%s: configuration is %T, want %T", name, conf, c)
			}
			a, err := build(c, env.Defaults())
			if err != nil {
				return nil, err
			}
			return a, nil
		},
	}
}

// Type describes a registered adapter type.
type Type struct {
	// Name is the type name used as platforms.<name>.type (and the default
	// when the instance name equals it).
	Name string
	// NewConfig returns a pointer to a new configuration struct with
	// defaults filled in. The config package decodes the platform's YAML
	// mapping into it strictly (unknown keys are errors) using the `yaml`
	// struct tags, then calls its Validate() error method if it has one.
	NewConfig func() any
	// New builds the adapter.
	New Factory
	// Hidden types (the fault-injection platform) are left out of help text.
	Hidden bool
	// DeduplicatesSends: the platform drops a send carrying an
	// Outbound.IdempotencyKey it has seen (Feishu uuid, webhook
	// Idempotency-Key, Discord nonce). The core retries a delivery whose
	// outcome is unknown (ErrAmbiguous) only on such platforms; elsewhere a
	// retry could show the reply twice (see Recoverer).
	DeduplicatesSends bool
	// Passive types only answer requests that arrive on herald's HTTP
	// listener, which socket activation starts herald for. Every other type
	// connects out (a long poll, a websocket) and receives nothing unless
	// herald already runs, so the service must start at boot.
	Passive bool
	// EveryNode: in cluster mode every node runs this type's intake (a
	// platform that posts callbacks to whichever node its load balancer
	// picks). Every other type's intake runs on one node at a time, the
	// holder of the instance's platform lease: a connection the platform
	// allows once per bot (Telegram's getUpdates poller, Discord's gateway
	// session), or one herald keeps single so that an event is not seen by
	// several nodes. Sending does not follow the lease: any node sends.
	EveryNode bool
}

// NeedsRunning reports whether an instance of the named type receives
// messages only while herald runs: true for every type but the passive
// ones, and for unknown names.
func NeedsRunning(name string) bool {
	t, ok := Lookup(name)
	return !ok || !t.Passive
}

var (
	mu    sync.RWMutex
	types = map[string]Type{}
)

// Register makes an adapter type available. It is called from init functions
// of adapter packages and panics on a duplicate or incomplete registration,
// which is a programming error.
func Register(t Type) {
	if t.Name == "" || t.NewConfig == nil || t.New == nil {
		panic("adapter: incomplete registration")
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := types[t.Name]; dup {
		panic(fmt.Sprintf("adapter: type %q registered twice", t.Name))
	}
	types[t.Name] = t
}

// Leased reports whether, in cluster mode, the named type's intake runs
// only on the node holding the instance's platform lease: true for every
// type but the EveryNode ones, and for unknown names.
func Leased(name string) bool {
	t, ok := Lookup(name)
	return !ok || !t.EveryNode
}

// DeduplicatesSends reports whether the named type's platform deduplicates
// sends (Type.DeduplicatesSends); false for unknown names.
func DeduplicatesSends(name string) bool {
	t, ok := Lookup(name)
	return ok && t.DeduplicatesSends
}

// Lookup returns the registered type name.
func Lookup(name string) (Type, bool) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := types[name]
	return t, ok
}

// Types lists the registered, non-hidden type names, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	var names []string
	for n, t := range types {
		if !t.Hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
