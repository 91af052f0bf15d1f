// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/heraldgw/herald/pkg/media"
)

// Names of the keys every node of a cluster shares in the store.
const (
	sharedButtonKey = "approval-buttons"
	sharedMediaKey  = "media"
)

// keyStore keeps the keys every node of a cluster shares
// (jsstore.Store.SharedKey).
type keyStore interface {
	SharedKey(ctx context.Context, name string, offer []byte) ([]byte, error)
}

// shareKeys makes this node sign and check approval buttons and media
// links with the keys every node of the cluster shares, so that a button
// made by one node is accepted by the node its conversation moved to, and
// a link signed by one node verifies on every node. Each key is created
// once cluster-wide: this node offers its own key (state_dir/
// approval-buttons.key, state_dir/media.key), and the first node to offer
// one sets it; a single herald turned into the first node of a cluster
// so keeps its buttons and links valid. It runs before the dispatcher
// starts, so before this node runs any turn.
func (d *daemon) shareKeys(ctx context.Context, ks keyStore, stateDir string) error {
	ctx, cancel := context.WithTimeout(ctx, natsOpenTimeout)
	defer cancel()
	own, err := media.LoadOrCreateKey(filepath.Join(stateDir, "approval-buttons.key"))
	if err != nil {
		return fmt.Errorf("approval button key: %w", err)
	}
	bk, err := ks.SharedKey(ctx, sharedButtonKey, own)
	if err != nil {
		return fmt.Errorf("approval button key: %w", err)
	}
	d.disp.SetButtonKey(bk)
	if d.media == nil || d.media.Signer == nil {
		return nil
	}
	own, err = media.LoadOrCreateKey(filepath.Join(stateDir, "media.key"))
	if err != nil {
		return fmt.Errorf("media signing key: %w", err)
	}
	mk, err := ks.SharedKey(ctx, sharedMediaKey, own)
	if err != nil {
		return fmt.Errorf("media signing key: %w", err)
	}
	if err := d.media.Signer.SetKey(mk); err != nil {
		return fmt.Errorf("media signing key: %w", err)
	}
	return nil
}
