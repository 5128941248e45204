package netlinkbatch

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Walk hands take each message of batch b that answers request seq, in
// order, until the answer is done; messages of other requests are stepped
// over. NLMSG_DONE and NLMSG_ERROR end the answer, with the kernel's errno
// when it sent one (EBADMSG, wrapped, for an error message without its
// errno); bytes that frame no message before the end are EBADMSG; take says whether its message ended it (a reply that is
// not multipart). It reports whether the answer is done and whether the
// kernel marked one of its messages interrupted (NLM_F_DUMP_INTR).
func Walk(b []byte, seq uint32, take func(kind, flags uint16, payload []byte) (done bool, err error)) (done, interrupted bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN && !done {
		size := int(binary.NativeEndian.Uint32(b[0:4]))
		if size < unix.NLMSG_HDRLEN || size > len(b) {
			return done, interrupted, fmt.Errorf("read the dump: a message of %d bytes in %d: %w", size, len(b), syscall.EBADMSG)
		}
		kind, flags := binary.NativeEndian.Uint16(b[4:6]), binary.NativeEndian.Uint16(b[6:8])
		if binary.NativeEndian.Uint32(b[8:12]) == seq {
			interrupted = interrupted || flags&unix.NLM_F_DUMP_INTR != 0
			payload := b[unix.NLMSG_HDRLEN:size]
			if kind == unix.NLMSG_DONE || kind == unix.NLMSG_ERROR {
				return true, interrupted, answerErrno(kind, payload)
			}
			if done, err = take(kind, flags, payload); err != nil {
				return done, interrupted, err
			}
		}
		b = b[min(Align(size), len(b)):]
	}
	if len(b) > 0 && !done {
		return done, interrupted, fmt.Errorf("read the dump: %d bytes after the messages: %w", len(b), syscall.EBADMSG)
	}
	return done, interrupted, nil
}

// answerErrno is the errno an NLMSG_DONE or NLMSG_ERROR carries, nil for
// none (0: a plain end, or an acknowledgement). An error message without
// its errno, or a positive one, is malformed, not an acknowledgement.
func answerErrno(kind uint16, payload []byte) error {
	if len(payload) < 4 {
		if kind == unix.NLMSG_ERROR {
			return fmt.Errorf("read the dump: an error message of %d bytes: %w", len(payload), syscall.EBADMSG)
		}
		return nil
	}
	errno := int32(binary.NativeEndian.Uint32(payload[0:4]))
	switch {
	case errno > 0:
		return fmt.Errorf("read the dump: errno %d in an end message: %w", errno, syscall.EBADMSG)
	case errno < 0:
		return syscall.Errno(-errno)
	}
	return nil
}

// Align rounds a message's or an attribute's length up to where the next
// one starts (NLMSG_ALIGNTO, RTA_ALIGNTO and NLA_ALIGNTO are all 4).
func Align(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// NextAttr splits the first netlink attribute off b, which holds at least
// an attribute header: its type (flags included: NLA_F_NESTED,
// NLA_F_NET_BYTEORDER), its value, and what follows its aligned end. One
// that runs past b is EBADMSG.
func NextAttr(b []byte) (kind uint16, value, rest []byte, err error) {
	size := int(binary.NativeEndian.Uint16(b[0:2]))
	if size < unix.SizeofRtAttr || size > len(b) {
		return 0, nil, nil, fmt.Errorf("an attribute of %d bytes in %d: %w", size, len(b), syscall.EBADMSG)
	}
	return binary.NativeEndian.Uint16(b[2:4]), b[unix.SizeofRtAttr:size], b[min(Align(size), len(b)):], nil
}
