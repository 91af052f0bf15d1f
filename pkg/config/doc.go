// SPDX-License-Identifier: Apache-2.0

// Package config loads and validates herald's YAML configuration.
//
// Decoding is strict: an unknown key, a value of the wrong type and a value
// that fails validation are all errors, and every error names the file, the
// line and the dotted key (herald.yaml:12:3: shutdown.drain_timeout: ...).
// herald exits with EX_CONFIG (78) on any of them, and the unit's
// RestartPreventExitStatus=78 stops systemd from restart-looping on a broken
// file.
//
// Platform sections are decoded into the configuration struct registered by
// the adapter type (adapter.Type.NewConfig), with the same strictness.
package config
