package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// netlinkTables talks nf_tables netlink: every change goes in a batch
// (BATCH_BEGIN, the message, BATCH_END), acknowledged per message.
type netlinkTables struct{}

// New returns the netlink implementation. Each call opens its own socket.
func New() Interface { return netlinkTables{} }

func (netlinkTables) DeleteTable(family Family, name string) error {
	if err := runTableMessage(unix.NFT_MSG_DELTABLE, 0, family, name); err != nil {
		return fmt.Errorf("delete nftables table %s %s: %w", family, name, err)
	}
	return nil
}

// runTableMessage sends one table message (NEWTABLE, DELTABLE) in a batch
// and returns the kernel's answer to it.
func runTableMessage(msgType, flags int, family Family, name string) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("open netfilter netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netfilter netlink socket: %w", err)
	}
	// The kernel always answers; the timeout only guards against a hang.
	timeout := unix.NsecToTimeval(replyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &timeout); err != nil {
		return fmt.Errorf("set receive timeout: %w", err)
	}
	const seq = 1
	var batch []byte
	batch = append(batch, batchMessage(unix.NFNL_MSG_BATCH_BEGIN, seq)...)
	batch = append(batch, tableMessage(msgType, flags, family, name, seq+1)...)
	batch = append(batch, batchMessage(unix.NFNL_MSG_BATCH_END, seq+2)...)
	if err := unix.Sendto(fd, batch, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return readAck(fd, seq+1)
}

// batchMessage begins or ends a batch of nf_tables messages.
func batchMessage(msgType int, seq uint32) []byte {
	req := nl.NewNetlinkRequest(msgType, 0)
	req.Seq = seq
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: nl.NFNETLINK_V0, ResId: resID(unix.NFNL_SUBSYS_NFTABLES)})
	return req.Serialize()
}

func tableMessage(msgType, flags int, family Family, name string, seq uint32) []byte {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|msgType, flags|unix.NLM_F_ACK)
	req.Seq = seq
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(family), Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(unix.NFTA_TABLE_NAME, nl.ZeroTerminated(name)))
	return req.Serialize()
}

// resID is the nfgenmsg's res_id field: big endian on the wire, while
// Nfgenmsg serializes it in native order.
func resID(subsystem uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], subsystem)
	return nl.NativeEndian().Uint16(b[:])
}

// replyTimeout bounds the wait for the kernel's answer.
const replyTimeout = 5 * time.Second

// readAck reads until the acknowledgement of message seq, or the first
// error the kernel reports for any message of the batch (an error on the
// batch's begin, e.g. no nf_tables, comes without one for seq).
func readAck(fd int, seq uint32) error {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parse reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := int32(nl.NativeEndian().Uint32(m.Data[:4])); errno != 0 {
				return unix.Errno(-errno)
			}
			if m.Header.Seq == seq {
				return nil
			}
		}
	}
}
