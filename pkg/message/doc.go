// SPDX-License-Identifier: Apache-2.0

// Package message holds herald's platform-neutral message model: what an
// adapter hands to the core (Inbound) and what the core asks an adapter to
// deliver (Outbound).
//
// The package has no dependencies inside herald so that every other package,
// adapters included, may import it.
package message
