package nettest

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Flow is a TCP connection to put in the conntrack table: the client's
// address, the service address it dialled and the endpoint that answers.
type Flow struct {
	Client, Service, Endpoint netip.AddrPort
}

// tcpEstablished is TCP_CONNTRACK_ESTABLISHED.
const tcpEstablished = 3

// FillConntrack creates the flows (IPv4, TCP ESTABLISHED, an hour's
// timeout) in the conntrack table of the calling thread's namespace. It
// writes them in batches without acknowledgement, hundreds per system call
// (conntrack -I makes one process per entry; a million would take hours in
// the VM), and fails the test on any error the kernel returns.
func FillConntrack(t testing.TB, flows []Flow) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		t.Fatalf("conntrack netlink socket: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("bind conntrack netlink socket: %v", err)
	}
	const batch = 64 << 10
	var buf []byte
	for i, f := range flows {
		buf = append(buf, createMessage(uint32(i+1), f)...)
		if len(buf) >= batch || i == len(flows)-1 {
			if err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
				t.Fatalf("send %d conntrack entries: %v", len(flows), err)
			}
			buf = buf[:0]
			if err := conntrackErrors(fd); err != nil {
				t.Fatalf("create conntrack entries (%d of %d sent): %v", i+1, len(flows), err)
			}
		}
	}
}

// conntrackErrors reads the error replies waiting on the socket.
func conntrackErrors(fd int) error {
	rb := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, rb, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
				if errno := int32(nl.NativeEndian().Uint32(m.Data[:4])); errno != 0 {
					return unix.Errno(-errno)
				}
			}
		}
	}
}

// createMessage is one IPCTNL_MSG_CT_NEW for f, without NLM_F_ACK.
func createMessage(seq uint32, f Flow) []byte {
	req := nl.NewNetlinkRequest(1<<8|nl.IPCTNL_MSG_CT_NEW, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	req.Seq = seq
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_INET, Version: nl.NFNETLINK_V0})
	req.AddData(tuple(nl.CTA_TUPLE_ORIG, f.Client, f.Service))
	req.AddData(tuple(nl.CTA_TUPLE_REPLY, f.Endpoint, f.Client))
	req.AddData(nl.NewRtAttr(nl.CTA_TIMEOUT, nl.BEUint32Attr(3600)))
	info := nl.NewRtAttr(nl.CTA_PROTOINFO|int(nl.NLA_F_NESTED), nil)
	tcp := info.AddRtAttr(nl.CTA_PROTOINFO_TCP|int(nl.NLA_F_NESTED), nil)
	tcp.AddRtAttr(nl.CTA_PROTOINFO_TCP_STATE, nl.Uint8Attr(tcpEstablished))
	req.AddData(info)
	return req.Serialize()
}

func tuple(kind int, src, dst netip.AddrPort) *nl.RtAttr {
	t := nl.NewRtAttr(kind|int(nl.NLA_F_NESTED), nil)
	ip := t.AddRtAttr(nl.CTA_TUPLE_IP|int(nl.NLA_F_NESTED), nil)
	s, d := src.Addr().As4(), dst.Addr().As4()
	ip.AddRtAttr(nl.CTA_IP_V4_SRC, s[:])
	ip.AddRtAttr(nl.CTA_IP_V4_DST, d[:])
	p := t.AddRtAttr(nl.CTA_TUPLE_PROTO|int(nl.NLA_F_NESTED), nil)
	p.AddRtAttr(nl.CTA_PROTO_NUM, nl.Uint8Attr(unix.IPPROTO_TCP))
	p.AddRtAttr(nl.CTA_PROTO_SRC_PORT, nl.BEUint16Attr(src.Port()))
	p.AddRtAttr(nl.CTA_PROTO_DST_PORT, nl.BEUint16Attr(dst.Port()))
	return t
}
