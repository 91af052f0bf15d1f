// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"io"
	"net/http"
)

// Do sends req with client (http.DefaultClient when nil), as a platform
// posting a callback does, and returns the answer's status code; the body
// is read (at most 64 KiB) and discarded so the connection can be reused.
func Do(client *http.Client, req *http.Request) (int, error) {
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
