// SPDX-License-Identifier: Apache-2.0

package media

import "net/netip"

// SetAddrPolicy replaces the client's address policy (tests only).
func SetAddrPolicy(c *Client, allowed func(netip.Addr) bool) { c.allowed = allowed }
