// SPDX-License-Identifier: Apache-2.0

//go:build heraldtest

package fault

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:     "fault",
		NoReadme: true,
	})
}
