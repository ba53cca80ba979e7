# syntax=docker/dockerfile:1
#
# The manager image: a static Go binary and the CPython that runs Python workflow files, on
# distroless, running as a non-root user with nothing else in the image (no shell, no package
# manager). Build it with `make docker-build` (needs a
# Docker engine); config/manager deploys it.

# Build stage: the module and build caches are BuildKit cache mounts, so a rebuild after a code
# change downloads nothing and recompiles only what changed.
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace

# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

# Then the source (.dockerignore keeps bin/, .dev/ and .git out of the context).
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o manager .

# Runtime stage: distroless Python 3.11 (Debian 12), user nonroot (65532), matching the
# Deployment's runAsNonRoot and readOnlyRootFilesystem. The manager is a static Go binary; the
# interpreter runs the Python workflow files' worker processes (no shell, no pip, no package
# manager in the image). The digest pins the base: move it forward deliberately (renovate, or
# `crane digest gcr.io/distroless/python3-debian12:nonroot`), never implicitly.
FROM gcr.io/distroless/python3-debian12:nonroot@sha256:7d1042ce588ab97019fe95c24ffca7bc5a82ccdac572511d5e09bda4435c89c5
WORKDIR /
COPY --from=builder /workspace/manager /manager
# The Python packages workflow files import (api.workflow_engine, api.webhooks) and the worker
# that runs them; the Deployment passes --python-package-dir=/app/python.
COPY python/api/ /app/python/api/
COPY python/centaur_worker/ /app/python/centaur_worker/
# The workflow files that ship with the operator (the product's examples); the Deployment lists
# /app/workflows first in WORKFLOW_DIRS, before the organisation's overlay.
COPY workflows/*.py /app/workflows/
ENV PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
ENTRYPOINT ["/manager"]
