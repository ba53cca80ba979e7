# syntax=docker/dockerfile:1
#
# The manager image: a static Go binary on distroless, running as a non-root user with nothing
# else in the image (no shell, no package manager). Build it with `make docker-build` (needs a
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

# Runtime stage: distroless static, user nonroot (65532), matching the Deployment's
# runAsNonRoot and readOnlyRootFilesystem.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
# The workflow files that ship with the operator; the Deployment lists /app/workflows first in
# WORKFLOW_DIRS.
COPY workflows/*.star /app/workflows/
USER 65532:65532
ENTRYPOINT ["/manager"]
