#!/usr/bin/env bash
# Builds helm from the Go module proxy into bin/helm at a pinned version, for the chart's tests
# (internal/chartcheck: helm lint and helm template of charts/centaur-workflows).
#
# There is no internet here beyond the module proxy, so helm's release tarballs cannot be
# downloaded; its Go module is compiled instead, from a small module of its own under
# bin/.helm-build (so the operator's go.mod never requires helm's dependencies).
#
# The build is cached: a binary whose version stamp matches is left alone, so a second run does
# nothing. About 3 minutes on two cores the first time.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/helm"
work="${root}/bin/.helm-build"

if [[ -x "${out}" && "$(cat "${out}.version" 2>/dev/null)" == "${HELM_VERSION}" ]]; then
  echo "helm ${HELM_VERSION}: cached in bin/"
  exit 0
fi
rm -rf "${work}" && mkdir -p "${work}"
printf 'module centaur.dev/tools/helm\n\ngo 1.26.0\n' >"${work}/go.mod"
echo "helm ${HELM_VERSION}: building from the module proxy (about 3 minutes on two cores)"
(cd "${work}" &&
  go get -tool "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" &&
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    -o "${out}" helm.sh/helm/v3/cmd/helm)
echo "${HELM_VERSION}" >"${out}.version"
echo "helm ready: ${out}"
