#!/usr/bin/env bash
# Proves the loopback control plane: builds it (cached), brings it up, runs the client-go
# smoke test (test/e2e/controlplane: create a Service and an EndpointSlice, read them
# back), checks the guest kubeconfig's server and the serving certificate's SANs, and
# tears it down. With --guest it also runs the same test in the test VM (hack/vm/run.sh)
# against kubeconfig-guest, through a qemu guestfwd 10.0.2.100:6443 -> 127.0.0.1:<port>.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap '"$CP_DIR/down.sh"' EXIT
start=$SECONDS
"$CP_DIR/up.sh"
step "control plane up in $((SECONDS - start)) s (build check included)"
source "$CP_RUN/env"
step "client-go smoke test against $CP_APISERVER_URL"
CP_KUBECONFIG=$CP_KUBECONFIG go test -count=1 -tags e2e -v ./test/e2e/controlplane/
step "guest kubeconfig and certificate"
grep -q "server: https://$CP_GUEST_ADDR\$" "$CP_GUEST_KUBECONFIG" ||
	{ echo "smoke: $CP_GUEST_KUBECONFIG does not point at $CP_GUEST_ADDR" >&2; exit 1; }
openssl x509 -in "$CP_RUN/pki/apiserver.crt" -noout -ext subjectAltName | grep -q "IP Address:${CP_GUEST_ADDR%:*}" ||
	{ echo "smoke: serving certificate lacks ${CP_GUEST_ADDR%:*}" >&2; exit 1; }
# The guest address is only reachable from a guest; check the certificate for it by
# presenting that name to the loopback listener.
curl -fsS --cacert "$CP_CA" -H "Authorization: Bearer $CP_TOKEN" \
	--connect-to "${CP_GUEST_ADDR%:*}:$CP_APISERVER_PORT:127.0.0.1:$CP_APISERVER_PORT" \
	"https://${CP_GUEST_ADDR%:*}:$CP_APISERVER_PORT/version" | grep -q '"gitVersion": "v1.37.2"' ||
	{ echo "smoke: TLS check as ${CP_GUEST_ADDR%:*} failed" >&2; exit 1; }
if [ "${1:-}" = --guest ]; then
	step "client-go smoke test in the VM through guestfwd $CP_GUEST_ADDR -> 127.0.0.1:$CP_APISERVER_PORT"
	guest_dir="$CP_RUN/guest"
	mkdir -p "$guest_dir"
	go test -c -tags e2e -o "$guest_dir/controlplane.test" ./test/e2e/controlplane/
	cp "$CP_GUEST_KUBECONFIG" "$guest_dir/kubeconfig"
	"$ROOT/hack/vm/run.sh" --timeout 300 --dir "$guest_dir:/cp" --env CP_KUBECONFIG=/cp/kubeconfig \
		--qemu "-netdev user,id=n0,restrict=on,guestfwd=tcp:$CP_GUEST_ADDR-tcp:127.0.0.1:$CP_APISERVER_PORT -device virtio-net-pci,netdev=n0" \
		-- '/usr/bin/ip link set eth0 up && /usr/bin/ip addr add 10.0.2.15/24 dev eth0 && /cp/controlplane.test -test.v'
fi
step "smoke passed in $((SECONDS - start)) s"
