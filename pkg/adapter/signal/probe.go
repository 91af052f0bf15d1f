// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"context"
	"fmt"
	"net/http"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Probe implements adapter.Prober for herald doctor: GET /api/v1/check
// (200 while the daemon runs) and, with account set, the opening of an
// event stream for it (400 when the daemon has no such account), closed
// at once. Bounded by ctx.
func (c *Config) Probe(ctx context.Context) (string, error) {
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer cl.CloseIdleConnections()
	get := func(path string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL()+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	code, err := get("/api/v1/check")
	if err != nil {
		return "", fmt.Errorf("signal-cli daemon at %s does not answer: %w", c.URL, err)
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("%s/api/v1/check answered %d: not a signal-cli daemon started with --http", c.URL, code)
	}
	if c.Account == "" {
		return "signal-cli daemon at " + c.URL + " answers", nil
	}
	code, err = get(c.eventsPath())
	switch {
	case err != nil:
		return "", fmt.Errorf("signal-cli daemon at %s: event stream: %w", c.URL, err)
	case code == http.StatusBadRequest:
		return "", fmt.Errorf("signal-cli daemon at %s has no account %s: register or link it", c.URL, c.Account)
	case code != http.StatusOK:
		return "", fmt.Errorf("signal-cli daemon at %s: event stream answered %d", c.URL, code)
	}
	return "signal-cli daemon at " + c.URL + " answers for " + c.Account, nil
}

var _ adapter.Prober = (*Config)(nil)
