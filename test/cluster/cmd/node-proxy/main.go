// Command node-proxy lets the host's kube-apiserver reach the kubelets of the node VMs
// (logs, exec, port-forward, metrics through the API server). The nodes' addresses live on
// the VMs' own L2 link, which the host cannot route to; each node VM forwards a host
// loopback port to its kubelet (qemu hostfwd). kube-apiserver sends its traffic to nodes
// through this HTTP CONNECT proxy (an EgressSelectorConfiguration, egress "cluster", as
// konnectivity would), which connects CONNECT node-ip:port to the loopback port listed for
// it in the routes file and refuses every other target. It listens on a unix socket, so
// only the host's root (the API server) can use it.
//
//	node-proxy -socket PATH -routes FILE
//
// The routes file has "TARGET LOCAL" lines (e.g. "192.168.100.11:10250 127.0.0.1:31234",
// "[fd00:100::11]:10250 127.0.0.1:31234"); it is read again for every connection, so nodes
// come and go without a restart.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	socket := flag.String("socket", "", "unix socket to listen on")
	routes := flag.String("routes", "", "file of TARGET LOCAL lines")
	flag.Parse()
	if *socket == "" || *routes == "" {
		log.Fatal("node-proxy: -socket and -routes are required")
	}
	_ = os.Remove(*socket)
	l, err := net.Listen("unix", *socket)
	if err != nil {
		log.Fatalf("node-proxy: listen on %s: %v", *socket, err)
	}
	if err := os.Chmod(*socket, 0o600); err != nil {
		log.Fatalf("node-proxy: chmod %s: %v", *socket, err)
	}
	server := &http.Server{Handler: &proxy{routes: *routes}, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("node-proxy: listening on %s, routes %s", *socket, *routes)
	log.Fatal(server.Serve(l))
}

// proxy serves CONNECT requests for the targets of its routes file.
type proxy struct {
	routes string
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT", http.StatusMethodNotAllowed)
		return
	}
	// The API server's CONNECT carries the target in the request line (its Host header is 127.0.0.1).
	target := r.URL.Host
	if target == "" {
		target = r.Host
	}
	local, err := p.lookup(target)
	if err != nil {
		log.Printf("node-proxy: CONNECT %s: %v", target, err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	upstream, err := net.DialTimeout("tcp", local, 10*time.Second)
	if err != nil {
		log.Printf("node-proxy: CONNECT %s: dial %s: %v", target, local, err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		log.Printf("node-proxy: CONNECT %s: hijack: %v", target, err)
		return
	}
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		client.Close()
		upstream.Close()
		return
	}
	go splice(upstream, buffered)
	go splice(client, upstream)
}

// lookup returns the loopback address the routes file lists for target.
func (p *proxy) lookup(target string) (string, error) {
	f, err := os.Open(p.routes)
	if err != nil {
		return "", fmt.Errorf("read routes: %w", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 2 && fields[0] == target {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("no route for %s in %s", target, p.routes)
}

// splice copies src to dst and then closes both.
func splice(dst io.WriteCloser, src io.Reader) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
}
