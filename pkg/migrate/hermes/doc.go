// SPDX-License-Identifier: Apache-2.0

// Package hermes turns a Hermes Agent gateway installation into a herald
// configuration: `herald migrate hermes`.
//
// It reads a Hermes home (config.yaml, .env and the pairing approvals),
// builds a Plan (the herald YAML, the secrets, and a table with one row for
// every Hermes gateway setting found: the herald setting it became, or why
// it did not), and writes the plan: herald.yaml plus one 0600 file per
// secret in the credentials directory, and the users approved by pairing
// in store.PairingImportFile, which herald imports into its store at start. Secrets never appear in the YAML, the
// table or any message. A second run compares with what is on disk and
// refuses to overwrite a changed file without Force.
//
// README.md beside this file lists the Hermes settings read, where they come
// from in Hermes, and what each becomes.
package hermes
