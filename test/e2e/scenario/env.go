// Package scenario holds the e2e scenarios run inside the test VM: each builds a node out
// of network namespaces, starts one proxier (ours with either gate setting, or upstream
// kube-proxy) against the real API server, drives Services and EndpointSlices through it,
// measures what a client sees and checks the kernel state.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// Proxy names.
const (
	OursGateOff = "ours-gate-off"
	OursGateOn  = "ours-gate-on"
	Upstream    = "upstream"
)

// Env is what every scenario shares.
type Env struct {
	Cluster *cluster.Cluster
	// APIServer is the API server's address as seen from the VM's root namespace.
	APIServer string
	// Profile is the kernel profile the VM booted with: "stock" or "legacy".
	Profile string
	Module  string
	// NodeName is the Node object the proxier runs as.
	NodeName string
	// OursBinary and UpstreamBinary are the two kube-proxy executables.
	OursBinary     string
	UpstreamBinary string
	LogDir         string
	// Verbosity is the proxiers' --v.
	Verbosity int
	Out       io.Writer
	// Tune holds the sizes and durations of the scenarios.
	Tune Tuning
}

// Spec returns the proxier of that name with the given sync period (0: default).
func (e *Env) Spec(name string, syncPeriod time.Duration) (guest.ProxySpec, error) {
	on, off := true, false
	spec := guest.ProxySpec{Name: name, Binary: e.OursBinary, SyncPeriod: syncPeriod, Verbosity: e.Verbosity}
	switch name {
	case OursGateOff:
		spec.Gate = &off
		return spec, nil
	case OursGateOn:
		spec.Gate = &on
		return spec, nil
	case Upstream:
		spec.Binary = e.UpstreamBinary
		return spec, nil
	}
	return guest.ProxySpec{}, fmt.Errorf("unknown proxy %q (want %s, %s or %s)", name, OursGateOff, OursGateOn, Upstream)
}

// Printf writes a progress line.
func (e *Env) Printf(format string, args ...any) {
	fmt.Fprintf(e.Out, "e2e: [%s %s] %s\n", time.Now().Format("15:04:05.000"), e.Profile, fmt.Sprintf(format, args...))
}

// world is one run's node: its namespaces, the proxier and the API objects.
type world struct {
	env     *Env
	run     *results.Run
	node    *guest.Node
	fwd     *guest.Forwarder
	proxier *guest.Proxier
	table   ipvs.Interface
	pods    map[string]*guest.Pod
	origin  time.Time
}

// newWorld builds the node, starts the proxier and waits for its first sync. On the
// legacy profile it first sets conn_reuse_mode=0, as kube-proxy does on kernels older
// than 5.9 (no proxier changes it on this 6.1 kernel).
func newWorld(ctx context.Context, env *Env, run *results.Run, spec guest.ProxySpec) (*world, error) {
	w := &world{env: env, run: run, pods: map[string]*guest.Pod{}, origin: time.Now()}
	if err := w.start(ctx, spec); err != nil {
		w.close(ctx)
		return nil, err
	}
	return w, nil
}

func (w *world) start(ctx context.Context, spec guest.ProxySpec) error {
	var err error
	if err = w.env.Cluster.Clear(ctx); err != nil {
		return err
	}
	if w.node, err = guest.NewNode(w.env.NodeName); err != nil {
		return err
	}
	if w.fwd, err = w.node.ForwardAPIServer(w.env.APIServer); err != nil {
		return err
	}
	if w.env.Profile == "legacy" {
		if err := w.node.WriteSysctl("net/ipv4/vs/conn_reuse_mode", "0"); err != nil {
			return err
		}
	}
	if w.table, err = w.node.IPVSTable(); err != nil {
		return err
	}
	w.run.Config, _ = spec.ConfigText()
	return w.startProxier(ctx, spec)
}

// startProxier starts the proxier (again) and waits for its first sync.
func (w *world) startProxier(ctx context.Context, spec guest.ProxySpec) error {
	log := filepath.Join(w.env.LogDir, strings.ReplaceAll(w.run.Key(), "/", "_")+".log")
	var err error
	if w.proxier, err = w.node.StartProxier(spec, log); err != nil {
		return err
	}
	if _, err := w.proxier.WaitSynced(ctx, 1, 90*time.Second); err != nil {
		return err
	}
	w.run.Sysctls, err = w.node.IPVSSysctls()
	return err
}

// close stops the proxier, kills the pods, releases the namespaces and removes the API
// objects; it reports what failed.
func (w *world) close(ctx context.Context) {
	var errs []error
	if w.proxier != nil {
		if s, err := w.proxier.Syncs(ctx); err == nil && s.Syncs > 0 {
			w.run.Note(fmt.Sprintf("proxier: %d IPv4 syncs, mean sync duration %s", s.Syncs, time.Duration(s.DurationSum/float64(s.Syncs)*float64(time.Second)).Round(time.Millisecond)))
		}
		if exited, err := w.proxier.Exited(); exited {
			errs = append(errs, fmt.Errorf("proxier exited during the run: %v (log %s)", err, w.proxier.LogPath))
		} else {
			errs = append(errs, w.proxier.Stop())
		}
	}
	for _, p := range w.pods {
		_, _, err := w.node.KillPod(p)
		errs = append(errs, err)
	}
	if w.fwd != nil {
		errs = append(errs, w.fwd.Close())
	}
	if w.node != nil {
		errs = append(errs, w.node.Close())
	}
	errs = append(errs, w.env.Cluster.Clear(ctx))
	if err := errors.Join(errs...); err != nil {
		w.run.Check(checkTeardown, false, err.Error())
	}
}

// since is the time elapsed since the run's origin.
func (w *world) since() time.Duration { return time.Since(w.origin) }

// event records a scenario step and prints it.
func (w *world) event(what string, latency time.Duration) {
	e := results.Event{At: w.since(), What: what, SyncLatency: latency}
	w.run.Events = append(w.run.Events, e)
	if latency > 0 {
		w.env.Printf("%s %s: t=%.2fs %s (kernel after %s)", w.run.Scenario, w.run.Proxy, e.At.Seconds(), what, latency.Round(time.Millisecond))
		return
	}
	w.env.Printf("%s %s: t=%.2fs %s", w.run.Scenario, w.run.Proxy, e.At.Seconds(), what)
}

// podIP is the address of the pod with index i (10.244.0.10 + i).
func podIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 244, 0, byte(10 + i)})
}

// startPod starts a pod and keeps track of it.
func (w *world) startPod(ctx context.Context, name string, ip netip.Addr) (*guest.Pod, error) {
	p, err := w.node.StartPod(ctx, name, ip)
	if err != nil {
		return nil, err
	}
	w.pods[name] = p
	return p, nil
}

// killPod kills a pod (process, then namespace), forgets it and records the event.
func (w *world) killPod(p *guest.Pod) error {
	delete(w.pods, p.Name)
	took, lingered, err := w.node.KillPod(p)
	what := fmt.Sprintf("pod %s killed, namespace gone after %s", p.Name, took.Round(time.Millisecond))
	if lingered {
		what = fmt.Sprintf("pod %s killed; its namespace lingered (orphaned sockets), link deleted after %s", p.Name, took.Round(time.Millisecond))
	}
	w.event(what, 0)
	return err
}

// endpoint is pod p's endpoint on this node.
func (w *world) endpoint(p *guest.Pod, state cluster.State) cluster.Endpoint {
	return cluster.Endpoint{Pod: p.Name, IP: p.Addr, Node: w.env.NodeName, State: state}
}
