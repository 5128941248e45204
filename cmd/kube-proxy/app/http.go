package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/metrics/prometheus/slis"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	netutils "k8s.io/utils/net"
)

// serverRetryInterval is how long a server that failed waits before it
// binds again (upstream's).
const serverRetryInterval = 5 * time.Second

// serverFailure is a server that could not serve, with bindAddressHardFail.
type serverFailure struct {
	reason string
	err    error
}

// newMetricsMux serves what upstream's metrics server serves.
func newMetricsMux(cfg *v1alpha1.KubeProxyConfiguration, warnings []string, metricsHandler http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", serveOK)
	mux.HandleFunc("/healthz/ping", serveOK)
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, string(modeIPVS))
	})
	mux.HandleFunc("/version", serveVersion)
	mux.Handle("/metrics", metricsHandler)
	slis.SLIMetricsWithReset{}.Install(mux)
	mux.Handle("/configz", configzHandler(cfg, warnings))
	if cfg.EnableProfiling {
		installProfiling(mux)
	}
	return mux
}

func serveOK(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, "ok")
}

// configzSection is /configz's key for what ipvs-proxy adds: the warnings
// about the configuration (an empty mode), an empty list without any.
const configzSection = "ipvs-proxy.kubernetes.io"

// configzHandler answers like component-base/configz: the configuration
// under its group name; and our warnings under configzSection.
func configzHandler(cfg *v1alpha1.KubeProxyConfiguration, warnings []string) http.Handler {
	shown := cfg.DeepCopy()
	setConfigKind(shown)
	ours := map[string][]string{"warnings": append([]string{}, warnings...)}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(map[string]any{v1alpha1.GroupName: shown, configzSection: ours})
		if err != nil {
			http.Error(w, fmt.Sprintf("encode configz: %v", err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	})
}

// installProfiling serves pprof and PUT /debug/flags/v (enableProfiling).
func installProfiling(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/flags/v", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "only PUT is allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msg, err := logs.GlogSetter(string(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, msg)
	})
}

// serveMetrics serves mux on addr (nothing when empty), binding again every
// few seconds after a failure unless hardFail receives it.
func serveMetrics(ctx context.Context, addr string, mux http.Handler, hardFail chan<- serverFailure) {
	if addr == "" {
		return
	}
	serve := func(ctx context.Context) error {
		listener, err := netutils.MultiListen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics server on %s: %w", addr, err)
		}
		server := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
		stop := context.AfterFunc(ctx, func() { _ = server.Close() })
		defer stop()
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server on %s: %w", addr, err)
		}
		return nil
	}
	go keepServing(ctx, serve, "FailedToStartMetricServer", hardFail)
}

// serveHealthz runs upstream's proxy health server (/healthz, /livez).
func serveHealthz(ctx context.Context, hs *healthcheck.ProxyHealthServer, hardFail chan<- serverFailure) {
	if hs == nil {
		return
	}
	go keepServing(ctx, hs.Run, "FailedToStartProxierHealthcheck", hardFail)
}

// keepServing runs serve until ctx ends; a failure is reported to hardFail
// (which ends the retries) or retried after serverRetryInterval.
func keepServing(ctx context.Context, serve func(context.Context) error, reason string, hardFail chan<- serverFailure) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		err := serve(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		utilruntime.HandleErrorWithContext(ctx, err, "Server failed", "reason", reason)
		if hardFail != nil {
			hardFail <- serverFailure{reason: reason, err: err}
			<-ctx.Done()
		}
	}, serverRetryInterval)
	klog.FromContext(ctx).V(2).Info("Server stopped", "reason", reason)
}
