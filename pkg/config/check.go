// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// Checks collects the errors of a Validate method, each a FieldError under
// its key, and words the checks every platform section makes (a required
// credential, a base URL, a timeout, a length limit) the same way for all
// of them. The zero value is ready to use:
//
//	var ck config.Checks
//	ck.Secret("token", c.Token, "")
//	ck.BaseURL("api_url", c.APIURL)
//	ck.Timeout("request_timeout", c.RequestTimeout, 0)
//	ck.Range("max_message_len", c.MaxMessageLen, 1, MaxLen)
//	return ck.Err()
type Checks struct{ errs []error }

// Add records an error for key.
func (ck *Checks) Add(key, format string, args ...any) {
	ck.errs = append(ck.errs, Errorf(key, format, args...))
}

// Err returns the errors recorded, joined; nil when there are none.
func (ck *Checks) Err() error { return errors.Join(ck.errs...) }

// Secret requires a credential reference. what, if not empty, says which
// credential it is ("the bot token (xoxb-…)"). The shape of a reference
// that is set is checked by secret.Ref's own Validate, which the decoder
// calls.
func (ck *Checks) Secret(key string, ref secret.Ref, what string) {
	if !ref.IsZero() {
		return
	}
	if what == "" {
		ck.Add(key, "required: {credential: NAME} or {file: /absolute/path}")
		return
	}
	ck.Add(key, "required: %s, as {credential: NAME} or {file: /absolute/path}", what)
}

// BaseURL checks the base URL of a platform's API (adapter.ValidBaseURL).
func (ck *Checks) BaseURL(key, s string) {
	if err := adapter.ValidBaseURL(s); err != nil {
		ck.Add(key, "%v", err)
	}
}

// Path checks a callback path on herald's listener (adapter.ValidPath);
// empty is accepted: the adapter then derives one from the instance name.
func (ck *Checks) Path(key, p string) {
	if p == "" {
		return
	}
	if err := adapter.ValidPath(p); err != nil {
		ck.Add(key, "%v", err)
	}
}

// Timeout requires a positive duration of at most max; max 0 sets no upper
// bound.
func (ck *Checks) Timeout(key string, d, max time.Duration) {
	switch {
	case d <= 0:
		ck.Add(key, "%s is not positive", d)
	case max > 0 && d > max:
		ck.Add(key, "%s is longer than the %s limit", d, max)
	}
}

// Duration requires min <= d <= max; max 0 sets no upper bound.
func (ck *Checks) Duration(key string, d, min, max time.Duration) {
	switch {
	case d < min:
		ck.Add(key, "%s is shorter than %s", d, min)
	case max > 0 && d > max:
		ck.Add(key, "%s is longer than the %s limit", d, max)
	}
}

// Range requires min <= n <= max.
func (ck *Checks) Range(key string, n, min, max int) {
	if n < min || n > max {
		ck.Add(key, "%d is outside %d..%d", n, min, max)
	}
}

// Bytes requires a size limit between 1 and max bytes.
func (ck *Checks) Bytes(key string, n, max int64) {
	if n < 1 || n > max {
		ck.Add(key, "%d is outside 1..%d", n, max)
	}
}

// OneOf requires s to be one of values.
func (ck *Checks) OneOf(key, s string, values ...string) {
	for _, v := range values {
		if s == v {
			return
		}
	}
	ck.Add(key, "%q is not one of %s", s, strings.Join(values, ", "))
}
