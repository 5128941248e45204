package netlinkbatch

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// A datagram socket pair stands in for netlink: each write is one batch.
func socketPair(t *testing.T) (reader, writer int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestNextReadsEachBatchWholeGrowingTheBuffer(t *testing.T) {
	r, w := socketPair(t)
	small := []byte("first batch")
	large := bytes.Repeat([]byte{7}, BufferSize+100) // does not fit the buffer it starts with
	for _, b := range [][]byte{small, large, small} {
		if _, err := unix.Write(w, b); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	for i, want := range [][]byte{small, large, small} {
		got, err := Next(r, &buf)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("batch %d: %d bytes (%v), want %d", i, len(got), err, len(want))
		}
	}
	if len(buf) < len(large) {
		t.Errorf("buffer of %d bytes kept, want it grown to at least %d", len(buf), len(large))
	}
}

func TestNextReturnsTheSocketsError(t *testing.T) {
	var buf []byte
	if _, err := Next(-1, &buf); !errors.Is(err, unix.EBADF) {
		t.Errorf("Next on a bad descriptor: %v, want EBADF", err)
	}
}
