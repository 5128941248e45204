package ipvs

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Sysctls the IPVS mode needs.
const (
	sysctlVSConntrack       = "net/ipv4/vs/conntrack"
	sysctlConnReuseMode     = "net/ipv4/vs/conn_reuse_mode"
	sysctlExpireNodestConn  = "net/ipv4/vs/expire_nodest_conn"
	sysctlExpireQuiescent   = "net/ipv4/vs/expire_quiescent_template"
	sysctlIPForward         = "net/ipv4/ip_forward"
	sysctlArpIgnore         = "net/ipv4/conf/all/arp_ignore"
	sysctlArpAnnounce       = "net/ipv4/conf/all/arp_announce"
	connReuseMinKernel      = 401 // 4.1: conn_reuse_mode exists
	connReuseFixedKernel    = 509 // 5.9: reuse no longer needs conn_reuse_mode=0
	unknownKernelVersionNum = 0
)

type sysctlSetting struct {
	name  string
	value int
}

// prepareKernel sets the sysctls, timeouts and the dummy device once at start.
func (p *Proxier) prepareKernel() error {
	want := []sysctlSetting{
		{sysctlVSConntrack, 1},
		// Without it, a deleted real server's connection entries are not
		// expired and every reused tuple toward it is dropped (field notes).
		{sysctlExpireNodestConn, 1},
		{sysctlExpireQuiescent, 1},
		{sysctlIPForward, 1},
	}
	kv := kernelVersionNumber(p.deps.KernelVersion)
	switch {
	case kv == unknownKernelVersionNum || kv < connReuseMinKernel:
		p.logger.Info("Leaving conn_reuse_mode alone: kernel version unknown or too old", "kernel", p.deps.KernelVersion)
	case kv < connReuseFixedKernel:
		want = append(want, sysctlSetting{sysctlConnReuseMode, 0})
	}
	if p.cfg.StrictARP {
		want = append(want, sysctlSetting{sysctlArpIgnore, 1}, sysctlSetting{sysctlArpAnnounce, 2})
	}
	for _, s := range want {
		if err := p.ensureSysctl(s.name, s.value); err != nil {
			return err
		}
	}
	if err := p.setTimeouts(); err != nil {
		p.logger.Error(err, "Failed to set IPVS timeouts")
	}
	if err := p.deps.NetDev.EnsureDummy(DummyDevice); err != nil {
		return fmt.Errorf("create dummy device %s: %w", DummyDevice, err)
	}
	return nil
}

func (p *Proxier) ensureSysctl(name string, value int) error {
	cur, err := p.deps.Sysctl.Get(name)
	if err != nil {
		return fmt.Errorf("read sysctl %s: %w", name, err)
	}
	if cur == value {
		return nil
	}
	p.logger.V(2).Info("Setting sysctl", "name", name, "from", cur, "to", value)
	if err := p.deps.Sysctl.Set(name, value); err != nil {
		return fmt.Errorf("set sysctl %s=%d: %w", name, value, err)
	}
	return nil
}

func (p *Proxier) setTimeouts() error {
	t := ipvs.Timeouts{TCP: p.cfg.TCPTimeout, TCPFin: p.cfg.TCPFinTimeout, UDP: p.cfg.UDPTimeout}
	if t == (ipvs.Timeouts{}) {
		return nil
	}
	return p.deps.IPVS.SetTimeouts(t)
}

// checkPrerequisites re-checks, on full syncs, what someone else may have
// changed: the dummy device and expire_nodest_conn, which the immediate
// termination policy depends on.
func (p *Proxier) checkPrerequisites() error {
	var errs []error
	if err := p.deps.NetDev.EnsureDummy(DummyDevice); err != nil {
		errs = append(errs, err)
	}
	cur, err := p.deps.Sysctl.Get(sysctlExpireNodestConn)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("read sysctl %s: %w", sysctlExpireNodestConn, err))
	case cur != 1:
		p.logger.Info("Restoring sysctl changed by someone else", "name", sysctlExpireNodestConn, "found", cur)
		errs = append(errs, p.ensureSysctl(sysctlExpireNodestConn, 1))
	}
	return errors.Join(errs...)
}

var kernelVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// kernelVersionNumber turns "6.1.0-56-amd64" into 601 (0 when unparsable).
func kernelVersionNumber(v string) int {
	m := kernelVersionRE.FindStringSubmatch(v)
	if m == nil {
		return unknownKernelVersionNum
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if minor > 99 {
		minor = 99
	}
	return major*100 + minor
}

// ignoreMissing treats "already gone" as success during cleanup.
func ignoreMissing(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
