// SPDX-License-Identifier: Apache-2.0

//go:build heraldtest

package all

// The fault-injection platform, in test builds only.
import _ "github.com/heraldgw/herald/pkg/adapter/fault"
