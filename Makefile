# The two commands a newcomer needs: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test up down status lint unit integration crd tools bench-reconcile deploy-manifests image

## Bring up the local cluster and Kafka, install the CRD, run the operator, apply the example.
demo:
	e2e/demo.sh

## Format check, clippy, unit tests, then integration tests against the real local stack.
test: lint unit integration

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test -p kstreams-operator -p kstreams-kafka

integration:
	$(CARGO) build -p kstreams-operator -p integration-tests --tests --bins
	e2e/with-stack.sh $(CARGO) test -p integration-tests -- --test-threads=4

## Start / stop / inspect the local Kubernetes control plane and Kafka broker.
up:
	e2e/cluster.sh up
	e2e/kafka.sh up
	@echo; echo 'Use it:  eval "$$(e2e/cluster.sh env)"; eval "$$(e2e/kafka.sh env)"'

down:
	-e2e/operator.sh down
	e2e/kafka.sh down
	e2e/cluster.sh down

status:
	-e2e/cluster.sh status
	-e2e/kafka.sh status
	-e2e/operator.sh status

## Build every pinned tool into the cache without starting anything.
tools:
	e2e/tools.sh all

## Reconcile benchmark (N StreamApps, default 200) against kubectl apply as the floor.
bench-reconcile:
	e2e/with-stack.sh e2e/bench-reconcile.sh $(N)

## Regenerate crds/ from the Rust types.
crd:
	$(CARGO) run -q -p kstreams-operator -- crd > crds/streamapp.yaml
	e2e/gen-chart-crd.sh

## Regenerate deploy/ (kubectl apply -k) from the Helm chart's default render.
deploy-manifests:
	e2e/gen-deploy.sh

## The operator's OCI image without a container engine (static musl build, umoci), checked by
## running its entrypoint against the local stack. See docs/operations.md.
image:
	e2e/image.sh all
