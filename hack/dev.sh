#!/usr/bin/env bash
# Runs the local dev cluster (the `make dev` target): etcd and kube-apiserver from bin/k8s with
# their data in .dev/, the CRDs installed, and bin/manager running against them until Ctrl-C.
#
# Builds hack/devcluster (the Go program that does the work; see its package doc) and hands the
# process over to it with exec, so that Ctrl-C and SIGTERM reach it directly. Arguments are passed
# through, e.g.:
#   bash hack/dev.sh --no-manager
#   bash hack/dev.sh --manager-args="--max-concurrent-reconciles=4"
# `make dev` builds bin/manager and bin/k8s first; run those targets yourself when calling this
# script directly.
set -euo pipefail

cd "$(dirname "$0")/.."
go build -o bin/devcluster ./hack/devcluster
exec bin/devcluster "$@"
