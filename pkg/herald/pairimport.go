// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/store"
)

// importPairings imports the pairing approvals of the import file next to
// the configuration file cfgFile (herald migrate hermes writes it) into the
// store, once. A bad file is logged and left alone: herald starts anyway,
// and the users it lists are not let in until it is fixed.
func (d *daemon) importPairings(ctx context.Context, cfgFile string, log *logrus.Entry) {
	if cfgFile == "" {
		return
	}
	path := filepath.Join(filepath.Dir(cfgFile), store.PairingImportFile)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	added, fresh, err := d.store.ImportPairingFile(ctx, path)
	switch {
	case err != nil:
		log.WithError(err).Errorf("cannot import the pairing approvals of %s; herald starts without them", path)
	case fresh:
		log.Infof("imported the pairing approvals of %s: %d new (herald pairing list)", path, added)
	}
}
