// SPDX-License-Identifier: Apache-2.0

// Package metrics defines herald's Prometheus metrics in one place, so that
// names, labels and help texts are reviewed together and tested as a set.
// Every metric is registered on a registry passed in (never the global
// default registry), so tests and several daemons in one process do not
// collide.
package metrics
