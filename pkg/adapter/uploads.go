// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// uploadRate is the slowest upload speed herald waits for.
const uploadRate = 128 << 10

// UploadTimeout bounds an upload of size bytes: the request timeout plus
// a second per 128 KiB.
func UploadTimeout(requestTimeout time.Duration, size int64) time.Duration {
	return requestTimeout + time.Duration(size/uploadRate)*time.Second
}

// OpenMedia opens the file of an outbound media part and returns it with
// its size. A missing file (pruned from the media store) is ErrPermanent,
// another failure ErrTemporary. The caller closes the file.
func OpenMedia(m *message.OutboundMedia) (*os.File, int64, error) {
	f, err := os.Open(m.Path)
	if err != nil {
		kind := ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = ErrPermanent
		}
		return nil, 0, fmt.Errorf("%w: %w", kind, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	return f, st.Size(), nil
}
