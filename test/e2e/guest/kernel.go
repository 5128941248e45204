package guest

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// ipvsSysctlNames are the IPVS settings a proxier sets or depends on.
func ipvsSysctlNames() []string {
	return []string{"conntrack", "conn_reuse_mode", "expire_nodest_conn", "expire_quiescent_template"}
}

// IPVSTable opens the IPVS table of the node's namespace.
func (n *Node) IPVSTable() (ipvs.Interface, error) {
	var table ipvs.Interface
	err := InNetns(n.NS, func() error {
		var err error
		table, err = ipvs.New()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open IPVS table of node %s: %w", n.Name, err)
	}
	return table, nil
}

// IPVSSysctls reads net/ipv4/vs/{conntrack,conn_reuse_mode,expire_nodest_conn,
// expire_quiescent_template} of the node as "name=value" words.
func (n *Node) IPVSSysctls() (string, error) {
	var words []string
	for _, name := range ipvsSysctlNames() {
		v, err := n.ReadSysctl("net/ipv4/vs/" + name)
		if err != nil {
			return "", err
		}
		words = append(words, name+"="+v)
	}
	return strings.Join(words, " "), nil
}

// ConntrackFlow is one conntrack entry of the node, the fields the scenarios look at.
type ConntrackFlow struct {
	Proto    uint8
	OrigSrc  netip.AddrPort
	OrigDst  netip.AddrPort
	ReplySrc netip.AddrPort
}

func (f ConntrackFlow) String() string {
	return fmt.Sprintf("proto=%d %s -> %s (reply from %s)", f.Proto, f.OrigSrc, f.OrigDst, f.ReplySrc)
}

// Conntrack lists the node's IPv4 conntrack entries.
func (n *Node) Conntrack() ([]ConntrackFlow, error) {
	h, err := netlink.NewHandleAt(n.NS, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("open netlink in node %s: %w", n.Name, err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("list conntrack of node %s: %w", n.Name, err)
	}
	out := make([]ConntrackFlow, 0, len(flows))
	for _, f := range flows {
		out = append(out, ConntrackFlow{
			Proto:    f.Forward.Protocol,
			OrigSrc:  addrPort(f.Forward.SrcIP, f.Forward.SrcPort),
			OrigDst:  addrPort(f.Forward.DstIP, f.Forward.DstPort),
			ReplySrc: addrPort(f.Reverse.SrcIP, f.Reverse.SrcPort),
		})
	}
	return out, nil
}

func addrPort(ip []byte, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

// ModuleProfile describes the loaded ip_vs module: the out-of-tree legacy build taints the
// kernel (taint "OE"), the stock module does not.
func ModuleProfile() string {
	taint, err := os.ReadFile("/sys/module/ip_vs/taint")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	t := strings.TrimSpace(string(taint))
	if t == "" {
		return "stock ip_vs (Debian 6.1, in-tree)"
	}
	return "legacy ip_vs: Debian 6.1 source with pre-5.9 reuse and deleted-real-server handling (hack/legacy-ipvs, taint " + t + ")"
}
