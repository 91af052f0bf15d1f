// SPDX-License-Identifier: Apache-2.0

package adapter

import "github.com/sirupsen/logrus"

// Base is what every adapter keeps of its Env: the instance name, the
// logger, the metrics and the lifecycle. An adapter embeds it and builds it
// in New with NewBase.
type Base struct {
	// Name is the instance name, the key under platforms:.
	Name    string
	Log     *logrus.Entry
	Metrics Metrics
	// Life runs Start and Stop (see Life).
	Life *Life
}

// NewBase returns the Base of an adapter of type typ built with env, as
// Prepare returned it (its defaults filled in).
func NewBase(typ string, env Env) Base {
	return Base{Name: env.Name, Log: env.Log, Metrics: env.Metrics, Life: NewLife(typ, env.Report)}
}
