// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldgw/herald/pkg/store"
)

// SharedKey returns the secret named name that every node of the store
// shares (the key signing approval buttons, the key signing media links),
// creating it with the value offer if no node stored one yet.
//
// The record, key.<name>, is created only if absent (the write expects
// the revision read, 0 for a key that never existed), so of several nodes offering their own
// value at once exactly one is stored and every node gets that one. A node
// that ran alone with a key of its own offers that key, so that what it
// signed stays valid when it becomes the first node of a cluster. The
// record is never written again nor pruned.
func (s *Store) SharedKey(ctx context.Context, name string, offer []byte) ([]byte, error) {
	if len(offer) == 0 {
		return nil, fmt.Errorf("jsstore: shared key %s: empty offer", name)
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	k := "key." + tok(name)
	for try := 0; try < maxTries; try++ {
		val, rev, ok, err := s.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			if len(val) == 0 {
				return nil, fmt.Errorf("%w: %s: empty", store.ErrCorrupt, k)
			}
			return val, nil
		}
		_, err = s.commit(ctx, "", putAt(k, offer, rev))
		if err == nil {
			return append([]byte(nil), offer...), nil
		}
		// Another node created it first (or the acknowledgement of our
		// own write was lost): read what is stored.
		if !errors.Is(err, errConflict) {
			return nil, fmt.Errorf("jsstore: shared key %s: %w", name, err)
		}
	}
	return nil, fmt.Errorf("jsstore: shared key %s: %w after %d tries", name, errConflict, maxTries)
}
