// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"
	"path/filepath"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
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
		return nil, fmt.Errorf("media store: %w", err)
	}
	client, err := media.NewClient(media.ClientOptions{MaxBytes: mc.MaxBytes, Timeout: mc.DownloadTimeout, Deadline: mc.DownloadTimeout, AllowPrivate: mc.AllowPrivate})
	if err != nil {
		return nil, fmt.Errorf("media client: %w", err)
	}
	key, err := media.LoadOrCreateKey(filepath.Join(cfg.StateDir, "media.key"))
	if err != nil {
		return nil, fmt.Errorf("media signing key: %w", err)
	}
	signer, err := media.NewSigner(key, st)
	if err != nil {
		return nil, fmt.Errorf("media signer: %w", err)
	}
	signer.OnReject = met.MediaLinkRefused
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
	return media.LoadOrCreateKey(filepath.Join(cfg.StateDir, "approval-buttons.key"))
}
