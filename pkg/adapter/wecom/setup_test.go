// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

// TestValidateCorpID: a corp id is 1 to 64 letters and digits.
func TestValidateCorpID(t *testing.T) {
	check := adaptertest.ValidateCheck(t, NewConfig, configure)
	check("", func(c *Config) { c.CorpID = strings.Repeat("w", maxUserIDLen) })
	check("corp_id", func(c *Config) { c.CorpID = strings.Repeat("w", maxUserIDLen+1) })
	check("corp_id", func(c *Config) { c.CorpID = "" })
	check("corp_id", func(c *Config) { c.CorpID = "ww-1" })
}
