// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"fmt"

	"github.com/heraldgw/herald/pkg/secret"
)

// The steps every adapter's New takes before it builds anything of its
// own.

// Prepare starts an adapter's New: it refuses a nil configuration,
// validates conf, and returns env with its defaults filled in (Defaults)
// and the instance name typ when none is given (a test building the
// adapter directly). Errors start with typ.
//
//	env, err := adapter.Prepare(TypeName, conf, env)
func Prepare[C any, P interface {
	*C
	Validate() error
}](typ string, conf P, env Env) (Env, error) {
	if conf == nil {
		return env, errors.New(typ + ": no configuration")
	}
	if err := conf.Validate(); err != nil {
		return env, fmt.Errorf("%s: %w", typ, err)
	}
	env = env.Defaults()
	if env.Name == "" {
		env.Name = typ
	}
	return env, nil
}

// Secrets reads an adapter's credentials one after the other and keeps
// the first error, prefixed with the configuration key of the credential:
//
//	var rd adapter.Secrets
//	tok := rd.Read("token", conf.Token)
//	key := rd.Read("encoding_aes_key", conf.EncodingAESKey)
//	if err := rd.Err(); err != nil {
//		return nil, fmt.Errorf("wecom: %w", err)
//	}
//
// secret.Ref.Read refuses an empty credential, so a value read without an
// error is never empty. The zero value is ready to use.
type Secrets struct{ err error }

// Read reads ref, the credential of key; once an error occurred it reads
// nothing more and returns the zero Value.
func (rd *Secrets) Read(key string, ref secret.Ref) secret.Value {
	if rd.err != nil {
		return secret.Value{}
	}
	v, err := ref.Read()
	if err != nil {
		rd.err = fmt.Errorf("%s: %w", key, err)
	}
	return v
}

// Err returns the first error of Read.
func (rd *Secrets) Err() error { return rd.err }

// CallbackPath returns the path a callback adapter serves on herald's
// listener: the configured path, or prefix followed by the instance name
// when none is configured. The derived path is checked with ValidPath (an
// instance name may not make a usable path).
func CallbackPath(configured, prefix, name string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	p := prefix + name
	if err := ValidPath(p); err != nil {
		return "", fmt.Errorf("default path from instance name: %w", err)
	}
	return p, nil
}
