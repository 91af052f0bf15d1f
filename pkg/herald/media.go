// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/metrics"
)

// buildMedia opens the media store under state_dir/media and builds what
// the dispatcher needs to pass attachments to the agent, from the media:
// section.
func buildMedia(cfg *config.Config, met *metrics.Metrics) (*dispatch.Media, error) {
	mc := cfg.Media
	st, err := media.OpenStore(filepath.Join(cfg.StateDir, "media"), mc.MaxTotalBytes)
	if err != nil {
		return nil, &storageError{fmt.Errorf("media store: %w", err)}
	}
	client, err := media.NewClient(media.ClientOptions{MaxBytes: mc.MaxBytes, Timeout: mc.DownloadTimeout, Deadline: mc.DownloadTimeout, AllowPrivate: mc.AllowPrivate})
	if err != nil {
		return nil, fmt.Errorf("media client: %w", err)
	}
	key, err := media.LoadOrCreateKey(filepath.Join(cfg.StateDir, "media.key"))
	if err != nil {
		return nil, &storageError{fmt.Errorf("media signing key: %w", err)}
	}
	signer, err := media.NewSigner(key, st)
	if err != nil {
		return nil, fmt.Errorf("media signer: %w", err)
	}
	signer.OnReject = met.MediaLinkRefused
	st.OnUsage(met.MediaStore)
	m := &dispatch.Media{
		Store: st, Client: client, Signer: signer,
		PublicURL: cfg.MediaPublicURL(), URLTTL: mc.URLTTL, MaxBytes: mc.MaxBytes,
		ImageTransport: mc.ImageTransport, DataURLMaxBytes: mc.DataURLMaxBytes,
		Retries: *mc.Retries, DownloadTimeout: mc.DownloadTimeout, OutboundDirs: mc.OutboundDirs,
	}
	if t := mc.Transcribe; t.Enabled() {
		tr := &media.Transcriber{URL: t.URL, Model: t.Model, Timeout: t.Timeout}
		if !t.Key.IsZero() {
			v, err := t.Key.Read()
			if err != nil {
				return nil, fmt.Errorf("media.transcribe.key: %w", err)
			}
			tr.Key = v.Reveal()
		}
		m.Transcriber = tr
	}
	return m, nil
}

// buttonKey reads (creating it at first start) the key that signs approval
// buttons, state_dir/approval-buttons.key: 32 random bytes, mode 0600.
func buttonKey(cfg *config.Config) ([]byte, error) {
	k, err := media.LoadOrCreateKey(filepath.Join(cfg.StateDir, "approval-buttons.key"))
	if err != nil {
		return nil, &storageError{fmt.Errorf("approval button key: %w", err)}
	}
	return k, nil
}

// storageError is a set-up failure of the state directory (a full disk, an
// I/O or permission error), which a later start may not meet, as opposed
// to an invalid configuration.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// setupFailed logs a failure to set up media or approval buttons and
// returns its exit: ExitStoreIO for the state directory's storage, which
// the unit restarts, ExitConfig for the configuration, which it does not.
func (d *daemon) setupFailed(file, what string, err error) error {
	err = fmt.Errorf("%s: %w", file, err)
	if se := (*storageError)(nil); errors.As(err, &se) {
		return d.storeFailed(what, err)
	}
	logging.Event(d.log, logging.MsgConfigInvalid).WithError(err).Error(what)
	return d.failed(ExitConfig, err)
}
