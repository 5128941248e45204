package netlinkbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// message is one netlink message of request seq.
func message(seq uint32, kind, flags uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, kind)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return append(b, payload...)
}

func errnoPayload(errno int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(errno)) }

// TestWalkEnds: what ends an answer, with which error, and what is taken
// before: a plain end, an ack, the kernel's errno, a malformed end message,
// bytes that frame no message, other requests' messages stepped over.
func TestWalkEnds(t *testing.T) {
	data := message(7, 100, unix.NLM_F_MULTI, []byte{1, 2, 3, 4})
	tests := []struct {
		name   string
		batch  []byte
		taken  int
		done   bool
		errno  error // nil: no error
		badMsg bool  // the error wraps EBADMSG
	}{
		{"data then done", slices.Concat(data, message(7, unix.NLMSG_DONE, unix.NLM_F_MULTI, errnoPayload(0))), 1, true, nil, false},
		{"ack", message(7, unix.NLMSG_ERROR, 0, errnoPayload(0)), 0, true, nil, false},
		{"errno", message(7, unix.NLMSG_ERROR, 0, errnoPayload(-int32(syscall.ENOENT))), 0, true, syscall.ENOENT, false},
		{"error without errno", message(7, unix.NLMSG_ERROR, 0, nil), 0, true, nil, true},
		{"positive errno", message(7, unix.NLMSG_DONE, unix.NLM_F_MULTI, errnoPayload(2)), 0, true, nil, true},
		{"bytes after the messages", slices.Concat(data, []byte{1, 2, 3, 4, 5, 6, 7, 8}), 1, false, nil, true},
		{"bytes after the end", slices.Concat(data, message(7, unix.NLMSG_DONE, 0, errnoPayload(0)), []byte{1, 2}), 1, true, nil, false},
		{"other requests", slices.Concat(message(6, unix.NLMSG_ERROR, 0, nil), data, message(8, 100, 0, nil)), 1, false, nil, false},
	}
	for _, tt := range tests {
		taken := 0
		done, _, err := Walk(tt.batch, 7, func(kind, flags uint16, payload []byte) (bool, error) {
			taken++
			return false, nil
		})
		switch {
		case done != tt.done || taken != tt.taken:
			t.Errorf("%s: done %v after %d messages; want %v after %d", tt.name, done, taken, tt.done, tt.taken)
		case tt.badMsg && !errors.Is(err, syscall.EBADMSG):
			t.Errorf("%s: error %v; want EBADMSG", tt.name, err)
		case !tt.badMsg && err != tt.errno:
			t.Errorf("%s: error %v; want %v", tt.name, err, tt.errno)
		}
	}
}

// NextAttr splits attributes at their aligned ends, keeps the type's flags,
// and refuses a length shorter than a header or past the bytes.
func TestNextAttr(t *testing.T) {
	attr := func(kind uint16, value ...byte) []byte {
		b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(value)))
		b = binary.NativeEndian.AppendUint16(b, kind)
		b = append(b, value...)
		return append(b, make([]byte, Align(len(b))-len(b))...)
	}
	b := append(attr(1|unix.NLA_F_NESTED, 7), attr(2, 1, 2, 3, 4)...)
	kind, value, rest, err := NextAttr(b)
	if err != nil || kind != 1|unix.NLA_F_NESTED || !bytes.Equal(value, []byte{7}) || !bytes.Equal(rest, attr(2, 1, 2, 3, 4)) {
		t.Fatalf("NextAttr = %#x, %v, %v, %v", kind, value, rest, err)
	}
	for _, size := range []uint16{0, 3, 9} {
		bad := attr(2, 1, 2, 3, 4)
		binary.NativeEndian.PutUint16(bad, size)
		if _, _, _, err := NextAttr(bad); !errors.Is(err, syscall.EBADMSG) {
			t.Errorf("an attribute of length %d in 8 bytes: %v, want EBADMSG", size, err)
		}
	}
}
