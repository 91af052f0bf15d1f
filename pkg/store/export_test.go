// SPDX-License-Identifier: Apache-2.0

package store

import "database/sql"

type sqlTx = sql.Tx
