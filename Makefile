# kubechat — run "make help" for the targets.
GO        ?= go
TESTBIN   ?= $(CURDIR)/bin/testbin
# -timeout: a cold build cache makes the image test build the whole agent statically.
GOFLAGS_TEST ?= -race -timeout 45m
export KUBECHAT_TESTBIN := $(TESTBIN)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/kubechat
	$(GO) build -o bin/kubechat ./cmd/kubechat

.PHONY: generate
generate: ## Regenerate the config schema (configs/kubechat.schema.json and the chart's values schema) from the Go config types
	$(GO) generate ./configs

.PHONY: image
image: ## Build bin/kubechat-image.tar, a docker-archive image, without Docker (ARCH=arm64, VERSION=v1.2.3, IMAGE=repo/kubechat:tag)
	GOOS= GOARCH= $(GO) run ./hack/image -o bin/kubechat-image.tar -arch $(or $(ARCH),$(GOARCH),amd64) $(if $(VERSION),-version $(VERSION)) $(if $(IMAGE),-tag $(IMAGE))

.PHONY: teams-app
teams-app: ## Write bin/kubechat-teams-app.zip, the Teams app to upload (APP_ID=<Azure Bot's Microsoft App ID>, NAME=kubechat, APP_VERSION=1.0.0)
	$(GO) run ./hack/teams-app -app-id "$(APP_ID)" $(if $(NAME),-name "$(NAME)") $(if $(APP_VERSION),-version "$(APP_VERSION)") -o bin/kubechat-teams-app.zip

.PHONY: run
run: ## Demo: a local control plane, demo workloads and the agent with its web chat on http://127.0.0.1:8080
	@TESTBIN=$(TESTBIN) bash hack/testbin.sh demo
	@echo "run: building the agent (first run only, about 2 min on 2 cores)"
	$(GO) run ./hack/local

.PHONY: testbin
testbin: ## Build what the demo and the tests run (etcd, the Kubernetes binaries, kwok, kubectl, helm, Alertmanager, flux, staticcheck) into bin/testbin (cached)
	TESTBIN=$(TESTBIN) bash hack/testbin.sh all

.PHONY: unit
unit: testbin ## Unit and integration tests (real control plane where needed)
	$(GO) test $(GOFLAGS_TEST) -count=1 ./...

.PHONY: test-short
test-short: ## Unit tests only, without the control plane
	$(GO) test -short ./...

.PHONY: e2e
e2e: testbin ## End-to-end tests: the agent against a real control plane
	$(GO) test $(GOFLAGS_TEST) -tags e2e -count=1 ./e2e/...

.PHONY: test
test: lint unit e2e ## Everything CI runs: lint, unit and e2e tests

.PHONY: lint
lint: ## gofmt, go vet and staticcheck (also with the e2e tag), and go mod tidy must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	@TESTBIN=$(TESTBIN) bash hack/testbin.sh lint >/dev/null
	$(TESTBIN)/staticcheck ./...
	$(TESTBIN)/staticcheck -tags e2e ./e2e/...
	$(GO) mod tidy -diff

.PHONY: fuzz
fuzz: ## Run every fuzz test for 10s each
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 10s ./internal/config/
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 10s ./internal/command/
	$(GO) test -run XXX -fuzz FuzzSplit -fuzztime 10s ./internal/chat/
	$(GO) test -run XXX -fuzz FuzzInbound -fuzztime 10s ./internal/chat/webchat/
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime 10s ./internal/source/alertmanager/

.PHONY: bench
bench: testbin ## Print performance figures: a scale curve to 50k pods (ready time, RSS, anonymous memory, change-to-sink latency, memory per pod), pipeline events/s, in-process vs pod-mode command latency
	$(GO) test -run XXX -bench . -benchmem ./internal/...
	$(GO) run ./hack/bench

.PHONY: check-config
check-config: ## Validate every example in configs/ (secrets from placeholders in configs.ExampleEnv)
	$(GO) test -count=1 -run 'TestCheckConfigExamples' ./cmd/kubechat

.PHONY: clean
clean: ## Remove build output (keeps bin/testbin)
	rm -f bin/kubechat bin/kubechat-image.tar bin/kubechat-teams-app.zip
