// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"fmt"
	"net/url"
)

// ValidBaseURL checks a configured base URL of a platform's API: http or
// https, a host, and no query, fragment or user info (credentials belong in
// secret files, not in a URL that reaches logs). The error quotes s and is
// meant for config.Errorf under the field's key.
func ValidBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an http(s) URL without query, fragment or user info", s)
	}
	return nil
}
