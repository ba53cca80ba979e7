# Centaur Workflows on Kubernetes: build, generate, test and run the operator.
#
# Everything a target needs is built from the Go module proxy into bin/ on first use and cached
# there; nothing is downloaded from anywhere else and nothing needs a container engine.

IMG ?= centaur-workflow-operator:dev
LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUBEBUILDER_ASSETS ?= $(LOCALBIN)/k8s
HELM ?= $(LOCALBIN)/helm
GO_TEST_FLAGS ?= -race -count=1
FUZZTIME ?= 30s
TEST_FUZZTIME ?= 3s

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets and what they do.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=true paths="./..." output:crd:artifacts:config=config/crd/bases
	@# The chart renders the same CRDs and generated roles from copies (internal/chartcheck compares them).
	rm -f charts/centaur-workflows/files/crds/*.yaml charts/centaur-workflows/files/rbac/*.yaml
	cp config/crd/bases/*.yaml charts/centaur-workflows/files/crds/
	cp config/rbac/role.yaml config/rbac/*_editor_role.yaml config/rbac/*_viewer_role.yaml charts/centaur-workflows/files/rbac/

.PHONY: generate
generate: controller-gen ## Generate deepcopy methods for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files differ from what is committed.
	@stale=$$(git status --porcelain -- config/crd/bases config/rbac api charts/centaur-workflows/files); if [ -n "$$stale" ]; then \
		echo "generated files are stale or uncommitted: run 'make generate manifests' and commit the result:"; echo "$$stale"; exit 1; fi

.PHONY: fmt
fmt: ## Run gofmt over the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: ## Fail on unformatted files or vet findings.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

.PHONY: control-plane
control-plane: ## Build kube-apiserver and etcd from the Go module proxy into bin/k8s (cached).
	bash hack/build-control-plane.sh

.PHONY: helm
helm: ## Build helm from the Go module proxy into bin/helm (cached), for the chart's tests.
	bash hack/build-helm.sh

.PHONY: chart
chart: helm ## Lint the chart and print what it renders with its default values.
	$(HELM) lint --strict charts/centaur-workflows
	$(HELM) template centaur charts/centaur-workflows -n centaur-system

.PHONY: chromium
chromium: ## Find headless Chromium for the console's browser specs; as root, install Debian's chromium (SKIP_BROWSER=1 skips them).
	bash hack/install-chromium.sh

.PHONY: webhook-senders
webhook-senders: ## Install the webhook providers' own npm libraries (pinned, cached) that webhookserver's tests sign deliveries with.
	bash hack/install-webhook-senders.sh

.PHONY: python
python: ## Find a CPython 3.9+ for Python workflow files and their tests; as root, install Debian's python3.
	bash hack/install-python.sh

.PHONY: test
test: verify-generated lint control-plane helm chromium python webhook-senders cli ## Run every test (Python package, unit, envtest and browser suites) with -race, and each fuzz target briefly; builds the centaur CLI.
	cd python && python3 -B -m unittest discover -s tests -t .
	cd python && py=$$(for p in python3 /usr/bin/python3; do $$p -m pytest --version >/dev/null 2>&1 && { echo $$p; break; }; done); \
		if [ -n "$$py" ]; then $$py -B -m pytest -q -p no:cacheprovider tests; else echo "pytest: not installed, the Python tests ran under unittest only"; fi
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" HELM="$(HELM)" go test $(GO_TEST_FLAGS) ./...
	bash hack/fuzz.sh $(TEST_FUZZTIME)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s): signatures, envelopes, REST decoding, workflow files.
	bash hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: control-plane ## Benchmark the engine against the API server's raw limits; writes docs/benchmarks.md.
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" go run ./bench -doc docs/benchmarks.md $(BENCH_FLAGS)

.PHONY: chaos
chaos: control-plane ## Crash test: SIGKILL managers, etcd and the leader under load, then check the ledger.
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" go run ./hack/chaos $(CHAOS_FLAGS)

##@ Build

.PHONY: build
build: ## Build the manager binary into bin/manager.
	CGO_ENABLED=0 go build -o $(LOCALBIN)/manager .

.PHONY: cli
cli: ## Build the centaur CLI into bin/centaur (and bin/kubectl-centaur, the same CLI as a kubectl plugin, with its completion bin/kubectl_complete-centaur).
	go build -o $(LOCALBIN)/ ./cmd/centaur ./cmd/kubectl-centaur ./cmd/kubectl_complete-centaur

.PHONY: run
run: ## Run the manager against the cluster of your current kubeconfig.
	go run . --dev

.PHONY: dev
dev: control-plane build ## Start a local control plane in .dev/ and run the manager against it.
	bash hack/dev.sh

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of your current kubeconfig.
	kubectl apply -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs (and with them every run) from the cluster.
	kubectl delete -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator with the image IMG.
	kubectl kustomize config/default | sed 's|image: centaur-workflow-operator:dev|image: $(IMG)|' | kubectl apply -f -

.PHONY: undeploy
undeploy: ## Remove the operator from the cluster.
	kubectl delete -k config/default

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/ from the Go module proxy.
$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
