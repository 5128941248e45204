#!/usr/bin/env bash
# Unit tests: the whole module on the in-memory fakes (no root, no kernel IPVS).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
step "unit tests"
go test -count=1 "$@" ./...
# The cluster scenarios' own logic (comparisons, report cells, profile reads) has tests that
# need no cluster; they share their package's build tag. Without CLUSTER_ADMIN_KUBECONFIG the
# scenario tests themselves skip.
step "unit tests of the cluster scenarios' logic (tag cluster, no cluster)"
env -u CLUSTER_ADMIN_KUBECONFIG go test -count=1 -tags cluster "$@" ./test/cluster/...
