# dlock: build the container image and run local clusters in Docker.
# docs/operations.md explains each target and what it prints.
#
#   make image         build the static binary and the image $(IMAGE)
#   make start         3-node cluster on 127.0.0.1:24005-24007, wait for a leader
#   make status        the cluster's status, as node 1 sees it
#   make stop          stop the cluster, keep its data volumes
#   make start-single  1-node cluster on 127.0.0.1:24005 (stop with stop-single)
#   make start-tls     3-node cluster with mutual TLS; client certificate in build/tls
#                      (stop with stop-tls)
#   make clean         stop both, delete their data volumes and build/
#   make test          the README's test command (includes the Docker e2e test)

IMAGE ?= dlock:dev
PROJECT ?= dlock
SINGLE_PROJECT ?= $(PROJECT)-single
TLS_PROJECT ?= $(PROJECT)-tls
# Seconds `make start` waits for a serving leader.
READY_TIMEOUT ?= 60

# Docker Compose v2 (`docker compose`) if installed, else v1 (`docker-compose`).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

BIN := build/image/dlock
COMPOSE3 = DLOCK_IMAGE=$(IMAGE) $(COMPOSE) -p $(PROJECT) -f deploy/compose/docker-compose.yaml
COMPOSE1 = DLOCK_IMAGE=$(IMAGE) $(COMPOSE) -p $(SINGLE_PROJECT) -f deploy/compose/docker-compose-single.yaml
COMPOSE_TLS = DLOCK_IMAGE=$(IMAGE) $(COMPOSE) -p $(TLS_PROJECT) -f deploy/compose/docker-compose.tls.yml
TLS_ENV = DLOCK_CACERT=$(CURDIR)/build/tls/ca.pem DLOCK_CERT=$(CURDIR)/build/tls/client-admin.pem DLOCK_KEY=$(CURDIR)/build/tls/client-admin-key.pem
ENDPOINTS3 = 127.0.0.1:$${DLOCK_PORT_1:-24005} 127.0.0.1:$${DLOCK_PORT_2:-24006} 127.0.0.1:$${DLOCK_PORT_3:-24007}

.PHONY: image binary start stop status start-single stop-single start-tls stop-tls clean test

# The image is FROM scratch around a binary built here (nothing is pulled):
# see Dockerfile.
binary:
	CGO_ENABLED=0 go build -o $(BIN) ./cmd/dlock
	mkdir -p build/image/data

image: binary
	docker build -t $(IMAGE) .

start: image
	$(COMPOSE3) up -d
	deploy/compose/wait-ready.sh $(BIN) $(READY_TIMEOUT) $(ENDPOINTS3)
	@echo "export DLOCK_ENDPOINTS=$$(echo $(ENDPOINTS3) | tr ' ' ,)"

status: binary
	$(BIN) cluster status --endpoints "$$(echo $(ENDPOINTS3) | tr ' ' ,)"

stop:
	$(COMPOSE3) down

start-single: image
	$(COMPOSE1) up -d
	deploy/compose/wait-ready.sh $(BIN) $(READY_TIMEOUT) 127.0.0.1:$${DLOCK_PORT:-24005}

stop-single:
	$(COMPOSE1) down

# The certs service writes the CA and certificates into a volume; the
# client's files are copied out to build/tls for the host's CLI.
start-tls: image
	$(COMPOSE_TLS) up -d
	rm -rf build/tls && mkdir -p build/tls
	docker cp "$$($(COMPOSE_TLS) ps -a -q certs)":/tls/. build/tls/
	rm -f build/tls/ca-key.pem build/tls/node-*
	$(TLS_ENV) deploy/compose/wait-ready.sh $(BIN) $(READY_TIMEOUT) $(ENDPOINTS3)
	@echo "export DLOCK_ENDPOINTS=$$(echo $(ENDPOINTS3) | tr ' ' ,) $(TLS_ENV)"

stop-tls:
	$(COMPOSE_TLS) down

clean:
	$(COMPOSE3) down -v --remove-orphans
	$(COMPOSE1) down -v --remove-orphans
	$(COMPOSE_TLS) down -v --remove-orphans
	rm -rf build

test:
	go test -race ./...
