// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/heraldgw/herald/pkg/doctor"
	"github.com/heraldgw/herald/pkg/herald"
)

// status is `herald status`: the report on stdout (JSON with asJSON), exit
// code ExitNotRunning when herald does not answer.
func status(ctx context.Context, o doctor.Options, asJSON bool, stdout, stderr io.Writer) int {
	doc := doctor.Status(ctx, o)
	if asJSON {
		printJSON(stdout, doc)
	} else {
		printStatus(stdout, doc)
	}
	if !doc.Running {
		return report(&herald.ExitError{Code: herald.ExitNotRunning, Err: errors.New("herald is not running")}, stderr)
	}
	return herald.ExitOK
}

// runDoctor is `herald doctor`: every check on stdout (JSON with asJSON),
// exit code ExitFailure when one failed.
func runDoctor(ctx context.Context, o doctor.Options, asJSON bool, stdout, stderr io.Writer) int {
	r := doctor.Doctor(ctx, o)
	if asJSON {
		printJSON(stdout, r)
	} else {
		printChecks(stdout, r.Checks)
	}
	if n := r.Failed(); n > 0 {
		what := "checks"
		if n == 1 {
			what = "check"
		}
		return report(fmt.Errorf("%d %s failed", n, what), stderr)
	}
	return herald.ExitOK
}

// printJSON writes v as indented JSON, the format of every --json.
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
