#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module proxy into bin/ at
# pinned versions.
#
# There is no internet here beyond the module proxy, so setup-envtest cannot download the
# usual tarballs. Instead we compile the real binaries from their Go modules:
#   - kube-apiserver and kube-controller-manager: the k8s.io/kubernetes module, with its k8s.io/*
#     staging modules (which k8s.io/kubernetes replaces with ./staging paths that do not exist in
#     the module zip) replaced by the matching v0.X.Y releases. The controller manager runs the
#     garbage collector and the namespace controller in `make dev` and in the suites that delete
#     runs: without it owner references collect nothing and namespaces never finish deleting;
#   - etcd: go.etcd.io/etcd/server/v3, from a small module that requires it.
#
# The build is cached: a binary whose version stamp matches is left alone, so a second run
# does nothing. Output: bin/k8s/{kube-apiserver,kube-controller-manager,etcd} (the layout
# KUBEBUILDER_ASSETS expects, plus the controller manager).
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/k8s"
work="${root}/bin/.controlplane-build"
mkdir -p "${out}" "${work}"

# staging lists the k8s.io modules that k8s.io/kubernetes replaces with ./staging/src paths.
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
  kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver streaming)

# up_to_date NAME VERSION reports whether bin/k8s/NAME was built at VERSION.
up_to_date() { [[ -x "${out}/$1" && "$(cat "${out}/$1.version" 2>/dev/null)" == "$2" ]]; }

# build_kube NAME MINUTES builds k8s.io/kubernetes/cmd/NAME into bin/k8s/NAME.
build_kube() {
  local name="$1" minutes="$2"
  if up_to_date "${name}" "${KUBE_VERSION}"; then
    echo "${name} ${KUBE_VERSION}: cached in bin/k8s"
    return
  fi
  local staging_version="v0.${KUBE_VERSION#v1.}"
  local dir="${work}/${name}"
  rm -rf "${dir}" && mkdir -p "${dir}"
  {
    echo "module centaur.dev/controlplane/${name}"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/${m} => k8s.io/${m} ${staging_version}"; done
    echo ")"
  } >"${dir}/go.mod"
  echo "${name} ${KUBE_VERSION}: building from the module proxy (about ${minutes} minutes on two cores)"
  (cd "${dir}" &&
    go get -tool "k8s.io/kubernetes/cmd/${name}@${KUBE_VERSION}" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}/${name}" "k8s.io/kubernetes/cmd/${name}")
  echo "${KUBE_VERSION}" >"${out}/${name}.version"
}

build_etcd() {
  if up_to_date etcd "${ETCD_VERSION}"; then
    echo "etcd ${ETCD_VERSION}: cached in bin/k8s"
    return
  fi
  local dir="${work}/etcd"
  rm -rf "${dir}" && mkdir -p "${dir}"
  printf 'module centaur.dev/controlplane/etcd\n\ngo 1.26.0\n' >"${dir}/go.mod"
  echo "etcd ${ETCD_VERSION}: building from the module proxy (about 2 minutes on two cores)"
  (cd "${dir}" &&
    go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}/etcd" go.etcd.io/etcd/server/v3)
  echo "${ETCD_VERSION}" >"${out}/etcd.version"
}

build_etcd
build_kube kube-apiserver 9
# Shares most of kube-apiserver's packages, so it builds in a few minutes more.
build_kube kube-controller-manager 4
echo "control plane ready: KUBEBUILDER_ASSETS=${out}"
