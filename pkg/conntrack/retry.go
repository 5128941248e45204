package conntrack

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/util/retry"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
)

// ErrDumpInterrupted is what a table dump returns when the kernel
// interrupted it (NLM_F_DUMP_INTR: the table changed under it), so its
// result may be incomplete. It matches EINTR with errors.Is.
var ErrDumpInterrupted error = netlink.ErrDumpInterrupted

// retryInterrupted runs one dump-and-delete pass (deleting the matching
// entries it read) until it is not interrupted, at most as often as
// upstream's conntrack package (proxyutil.MaxAttemptsEINTR, kubernetes#129562):
// an interrupted pass deletes what it saw, the next one the rest. It
// returns the entries deleted by all passes; after the last interrupted
// pass, an error naming op.
func retryInterrupted(op string, pass func() (int, error)) (int, error) {
	total, passes := 0, 0
	err := retry.OnError(proxyutil.MaxAttemptsEINTR, proxyutil.ShouldRetryOnEINTR, func() error {
		passes++
		n, err := pass()
		total += n
		return err
	})
	switch {
	case err == nil:
		return total, nil
	case errors.Is(err, unix.EINTR):
		return total, fmt.Errorf("%s: dump interrupted %d times in a row: %w", op, passes, err)
	}
	return total, fmt.Errorf("%s: %w", op, err)
}
