// Package netlinkbatch reads a netlink socket's answers batch by batch into
// a buffer kept between reads, and walks their messages, for the dumps this
// project decodes itself (pkg/ipvs's virtual servers, pkg/netdev's
// addresses; pkg/ipset walks its dumps' messages with Walk).
package netlinkbatch

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufferSize is the buffer a reader starts with: twice the largest batch
// the kernel hands a dump's reader (32 KiB).
const BufferSize = 64 << 10

// Next reads the next batch on fd whole into *buf, grown when the batch
// would not fit, and returns it. Its size is asked first: read(2) drops
// silently what does not fit in the buffer, and a batch cut between two
// messages looks whole.
func Next(fd int, buf *[]byte) ([]byte, error) {
	size, err := recv(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC) // the batch's whole size, nothing read
	if err != nil {
		return nil, err
	}
	if size > len(*buf) {
		*buf = make([]byte, max(size, BufferSize))
	}
	n, err := recv(fd, *buf, 0)
	if err != nil {
		return nil, err
	}
	return (*buf)[:n], nil
}

// recv is recvfrom(2) into b without the sender's address, which
// unix.Recvfrom would allocate for every batch; a call a signal
// interrupted is made again.
func recv(fd int, b []byte, flags int) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(flags), 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
		default:
			return 0, errno
		}
	}
}
