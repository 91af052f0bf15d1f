// SPDX-License-Identifier: Apache-2.0

// Package secret reads credentials (bot tokens, signing secrets, API keys)
// from files, never from configuration text: either a systemd credential
// loaded with LoadCredential= (found in $CREDENTIALS_DIRECTORY) or an explicit
// file path.
//
// A Ref is what configuration holds; only Read touches the secret itself, and
// Value's String and GoString never print it, so a secret cannot reach a log
// line through %v.
package secret
