// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"fmt"
)

// MaxAdapterState is the largest value SetAdapterState stores: well under
// NATS's default maximum payload (1 MB), which a value, its key and its
// headers must fit in.
const MaxAdapterState = 256 << 10

// adapterStateKey is the key of the state name of platform instance.
func adapterStateKey(instance, name string) string {
	return "ast." + tok(instance) + "." + tok(name)
}

// AdapterState returns the state name of platform instance (an adapter's
// resume position: Discord's session, a cursor, a sync token) as last
// stored by SetAdapterState on any node; ok is false when there is none
// (never stored, or deleted).
func (s *Store) AdapterState(ctx context.Context, instance, name string) (data []byte, ok bool, err error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	data, _, ok, err = s.get(ctx, adapterStateKey(instance, name))
	return data, ok, err
}

// SetAdapterState replaces the state name of platform instance with data,
// at most MaxAdapterState bytes. The last write wins: the platform's lease
// makes its holder the only writer. It returns once JetStream
// acknowledged the write.
func (s *Store) SetAdapterState(ctx context.Context, instance, name string, data []byte) error {
	if len(data) > MaxAdapterState {
		return fmt.Errorf("jsstore: adapter state %s of %s: %d bytes, more than the %d the store holds", name, instance, len(data), MaxAdapterState)
	}
	return s.simple(ctx, put(adapterStateKey(instance, name), data))
}

// DeleteAdapterState forgets the state name of platform instance; one
// that is not there is no error.
func (s *Store) DeleteAdapterState(ctx context.Context, instance, name string) error {
	return s.simple(ctx, del(adapterStateKey(instance, name)))
}
