// SPDX-License-Identifier: Apache-2.0

// Package all registers every built-in adapter type. Import it for its side
// effects (cmd/herald does).
package all
