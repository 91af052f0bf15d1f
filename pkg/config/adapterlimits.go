// SPDX-License-Identifier: Apache-2.0

package config

import "time"

// AdapterLimits are the two keys every adapter's section has:
// request_timeout, how long one call to the platform may take, and
// max_message_len, the split size of replies in characters. An adapter's
// Config embeds it with the tag `yaml:",inline"`, so that both stay keys
// of the section itself, and sets their defaults in its NewConfig.
type AdapterLimits struct {
	// RequestTimeout bounds one call to the platform; what a call covers,
	// the adapter says.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxMessageLen is the split size the core uses for replies, in
	// characters.
	MaxMessageLen int `yaml:"max_message_len"`
}

// Check adds the checks of both keys to ck: request_timeout positive and
// at most maxTimeout (0: no upper bound), max_message_len from 1 to
// maxLen.
func (l AdapterLimits) Check(ck *Checks, maxTimeout time.Duration, maxLen int) {
	ck.Timeout("request_timeout", l.RequestTimeout, maxTimeout)
	ck.Range("max_message_len", l.MaxMessageLen, 1, maxLen)
}
