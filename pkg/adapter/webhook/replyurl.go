// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// A per-message reply_url makes herald POST to an address chosen by whoever
// can send it a message. Unchecked, that is a server-side request forgery
// primitive (reach 169.254.169.254, an admin port on localhost). So a
// reply_url is accepted only when it lies under one of the configured
// prefixes: reply_url_allow, plus reply_url itself.

// parseReplyURL checks the shape of a reply URL or prefix.
func parseReplyURL(s string) (*url.URL, error) {
	if len(s) > maxURLLen {
		return nil, fmt.Errorf("URL is %d bytes, limit %d", len(s), maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return nil, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("URL has no host")
	case u.User != nil:
		return nil, errors.New("URL must not contain user info")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, errors.New("URL must not contain a fragment")
	case hasDotSegment(u.Path):
		return nil, errors.New("URL path must not contain . or .. segments")
	}
	return u, nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// allowList holds parsed URL prefixes.
type allowList []*url.URL

func newAllowList(prefixes ...string) (allowList, error) {
	var l allowList
	for _, p := range prefixes {
		if p == "" {
			continue
		}
		u, err := parseReplyURL(p)
		if err != nil {
			// Not quoted: the URL may carry a token.
			return nil, err
		}
		l = append(l, u)
	}
	return l, nil
}

// allows reports whether u lies under one of the prefixes: same scheme,
// same host and port (default ports made explicit), and a path that equals
// the prefix's or continues it at a segment boundary. A prefix with a query
// string matches only that exact URL.
func (l allowList) allows(u *url.URL) bool {
	for _, p := range l {
		if !strings.EqualFold(u.Scheme, p.Scheme) ||
			!strings.EqualFold(u.Hostname(), p.Hostname()) ||
			port(u) != port(p) {
			continue
		}
		if p.RawQuery != "" {
			if u.Path == p.Path && u.RawQuery == p.RawQuery {
				return true
			}
			continue
		}
		if pathUnder(u.Path, p.Path) {
			return true
		}
	}
	return false
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

func pathUnder(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	if strings.HasSuffix(prefix, "/") {
		return true
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '/'
}
