#!/usr/bin/env bash
# Step 2b of make conformance: the test images (images.sh) into every node's containerd
# of the running cluster, so `make conformance` works after a plain `make cluster` (the node
# VMs import only the tarballs they boot with). Per node: a privileged host-PID pod of the
# nodes' own busybox image (cluster.local/busybox:1, never pulled; it links only /bin/sh, so
# applets are called as /bin/busybox APPLET), then for each
# _output/conformance/images/*.oci.tar whose image the node lacks,
#   kubectl exec -i POD -- /bin/busybox nsenter -t 1 -m -- ctr -n k8s.io images import - <TARBALL
# (the tarball streams through the API server and node-proxy; ctr is the node's). The pod is
# deleted at the end. An image the node has under the same name and digest is not imported
# again; a rebuilt one (same name, new digest) replaces it.
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
source "$CLUSTER_CP_RUN/env"
NS=kube-system
START=$SECONDS

# image_id prints "NAME DIGEST" for a tarball, from its OCI index: the name annotation the
# builder writes and ctr reads, and the digest ctr lists for the image once imported.
image_id() {
	local index name digest
	index=$(tar -xOf "$1" index.json)
	name=$(grep -o '"io.containerd.image.name": *"[^"]*"' <<<"$index" | head -n1 | sed 's/.*: *"//; s/"$//') || true
	digest=$(grep -o '"digest": *"sha256:[0-9a-f]*"' <<<"$index" | head -n1 | sed 's/.*: *"//; s/"$//') || true
	[ -n "$name" ] && [ -n "$digest" ] || { echo "node-images: no image name or digest in $1" >&2; return 1; }
	echo "$name $digest"
}

# IMAGE_IDS maps each tarball to its "NAME DIGEST", read once (tar reads through the tarball).
declare -A IMAGE_IDS

# node_images prints "NAME DIGEST" for every image in the node's k8s.io namespace.
node_images() {
	on_node "$1" ctr -n k8s.io images ls | awk 'NR > 1 { print $1, $3 }'
}

start_pod() {
	local node=$1 pod=$2
	kubectl -n "$NS" delete pod "$pod" --ignore-not-found --wait=true >/dev/null
	kubectl -n "$NS" run "$pod" --image=cluster.local/busybox:1 --image-pull-policy=Never --restart=Never \
		--overrides="{\"spec\":{\"nodeName\":\"$node\",\"hostPID\":true,\"automountServiceAccountToken\":false,
			\"tolerations\":[{\"operator\":\"Exists\"}],
			\"containers\":[{\"name\":\"$pod\",\"image\":\"cluster.local/busybox:1\",\"imagePullPolicy\":\"Never\",
				\"command\":[\"/bin/busybox\",\"sleep\",\"3600\"],\"securityContext\":{\"privileged\":true}}]}}" >/dev/null
	kubectl -n "$NS" wait --for=condition=Ready "pod/$pod" --timeout=300s >/dev/null
}

on_node() {
	local pod=$1
	shift
	kubectl -n "$NS" exec -i "$pod" -- /bin/busybox nsenter -t 1 -m -- "$@"
}

import_node() {
	local node=$1 pod="conformance-images-$1" have tarball id name
	start_pod "$node" "$pod"
	have=$(node_images "$pod")
	for tarball in "$CONF_IMAGES"/*.oci.tar; do
		id=${IMAGE_IDS[$tarball]}
		name=${id% *}
		if grep -qxF "$id" <<<"$have"; then
			echo "node-images: $node has $id"
			continue
		fi
		step "node-images: $node: importing $name ($(du -h "$tarball" | cut -f1); $((SECONDS - START)) s so far)"
		on_node "$pod" ctr -n k8s.io images import - <"$tarball" >/dev/null ||
			{ echo "node-images: $node: ctr import of $tarball failed" >&2; return 1; }
	done
	have=$(node_images "$pod")
	for tarball in "$CONF_IMAGES"/*.oci.tar; do
		id=${IMAGE_IDS[$tarball]}
		grep -qxF "$id" <<<"$have" || { echo "node-images: $node: $id missing after the import" >&2; return 1; }
	done
	kubectl -n "$NS" delete pod "$pod" --wait=false >/dev/null
}

main() {
	compgen -G "$CONF_IMAGES/*.oci.tar" >/dev/null || { echo "node-images: no $CONF_IMAGES/*.oci.tar: run images.sh" >&2; return 1; }
	local node tarball
	for tarball in "$CONF_IMAGES"/*.oci.tar; do
		IMAGE_IDS[$tarball]=$(image_id "$tarball") || return 1
	done
	for node in $(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{end}'); do
		import_node "$node"
	done
	step "node-images: done in $((SECONDS - START)) s"
}

main "$@"
