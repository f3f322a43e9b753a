# The two commands a newcomer needs: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup demo test up down status lint unit integration test-kafka-compat crd tools bench bench-reconcile bench-memory bench-recovery soak deploy-manifests image

## Check the toolchains and install the missing Debian packages, before anything builds; fails
## within seconds naming what is missing. Everything that builds depends on it.
setup:
	e2e/setup.sh

demo lint unit integration test-kafka-compat up tools: setup

## Bring up the local cluster and Kafka, the CRD, the operator and the stand-in kubelet, run the
## word-count example as 2 real Kafka Streams members fed by a generator, print it Ready.
demo:
	e2e/demo.sh

## Format check, clippy, unit tests, then integration tests against the real local stack.
test: lint unit integration

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test -p kstreams-operator -p kstreams-kafka -p kstreams-kafka-codegen -p kstreams-standin

integration:
	$(CARGO) build -p kstreams-operator -p integration-tests --tests --bins
	e2e/with-stack.sh $(CARGO) test -p integration-tests -- --test-threads=4

## The Kafka-side integration tests against the older supported broker, Apache Kafka 4.3.1
## (the example app stays on Kafka Streams 4.4.0). A running broker of another version is
## refused, not reused: `make down` first.
KAFKA_COMPAT_VERSION := 4.3.1
KAFKA_COMPAT_TESTS := kafka_check kafka_insight kafka_reset kafka_security kafka_outage
test-kafka-compat:
	KAFKA_VERSION=$(KAFKA_COMPAT_VERSION) e2e/tools.sh kafka
	@s=$$(KAFKA_VERSION=$(KAFKA_COMPAT_VERSION) e2e/kafka.sh status 2>/dev/null) || s=; \
	case $$s in ""|*"Apache Kafka $(KAFKA_COMPAT_VERSION))"*) ;; \
	  *) echo "error: $$s; test-kafka-compat needs $(KAFKA_COMPAT_VERSION): make down first" >&2; exit 1 ;; esac
	$(CARGO) build -p kstreams-operator -p integration-tests --tests --bins
	KAFKA_VERSION=$(KAFKA_COMPAT_VERSION) e2e/with-stack.sh $(CARGO) test -p integration-tests \
	  $(addprefix --test ,$(KAFKA_COMPAT_TESTS)) -- --test-threads=4

## Start / stop / inspect the local Kubernetes control plane and Kafka broker (down and status
## also cover the operator and the stand-in kubelet that `make demo` starts).
up:
	e2e/cluster.sh up
	e2e/kafka.sh up
	@echo; echo 'Use it:  eval "$$(e2e/cluster.sh env)"; eval "$$(e2e/kafka.sh env)"'

down:
	-e2e/pods.sh down
	-e2e/operator.sh down
	e2e/kafka.sh down
	e2e/cluster.sh down

status:
	-e2e/cluster.sh status
	-e2e/kafka.sh status
	-e2e/operator.sh status
	-e2e/pods.sh status

## Build every pinned tool into the cache without starting anything.
tools:
	e2e/tools.sh all

## Every benchmark one after the other, one markdown table at the end (e2e/bench.sh): the Kafka
## refresh bench, the reconcile benchmark at 200 and 1,000 apps, the memory/quiet benchmark.
## BENCH_ONLY="kafka reconcile memory" runs a subset; logs kept under /tmp/kso-bench.*.
bench: setup
	e2e/with-stack.sh e2e/bench.sh

## Reconcile benchmark (N StreamApps, default 200) against kubectl apply as the floor.
bench-reconcile:
	e2e/with-stack.sh e2e/bench-reconcile.sh $(N)

## Memory/quiet benchmark (e2e/bench-memory.sh): BENCH_APPS StreamApps (1000) with seeded Kafka
## groups, time to all Ready, then RSS, CPU, writes and Kafka checks over a quiet window of
## BENCH_QUIET_SECONDS (300).
bench-memory: setup
	e2e/with-stack.sh e2e/bench-memory.sh

## Recovery benchmark with the real word count (3 replicas, 1 standby, seeded state): a rolling
## update, a restart with and without its volume, a scale-out, RestoreAware beside StatefulSet.
bench-recovery:
	e2e/with-stack.sh e2e/bench-recovery.sh rollout

## The long cases, one table at the end (e2e/soak.sh): a memory soak, kube-apiserver/etcd
## restarts, the decoder properties at 10x the budget, the operator killed ten times.
soak: setup
	e2e/with-stack.sh e2e/soak.sh

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
