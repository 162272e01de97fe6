# Stock-System: `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
PYTEST_ARGS ?=
# What the pipeline follows, for `make up` and `make local`: SYMBOLS=AAPL,MSFT SOURCE=yahoo INTERVAL=5
SYMBOLS ?= AAPL,MSFT,GOOG
SOURCE ?= simulated
INTERVAL ?= 1
export SYMBOLS SOURCE INTERVAL
COMPOSE ?= docker compose


.PHONY: up down logs ps topics clean local clean-local
.PHONY: help install test test-unit test-integration lint format stack-up stack-down stack-status stack-resolve

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## install Python packages and fetch the services' jars (Maven Central) into ~/.cache
	$(PYTHON) -m pip install -r requirements-dev.txt
	$(PYTHON) -m stack resolve

test: ## run every test: unit, then integration on real ZooKeeper/Kafka/Cassandra/Spark
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

test-unit: ## run the fast unit tests only (no services)
	$(PYTHON) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: ## run the integration tests (the harness starts the services)
	$(PYTHON) -m pytest tests/integration $(PYTEST_ARGS)

lint: ## ruff lint and format check
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format: ## apply ruff's formatting and safe fixes
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

up: ## run the whole pipeline in Docker (SYMBOLS=AAPL,MSFT SOURCE=yahoo INTERVAL=5 make up)
	$(COMPOSE) up -d --build
	@echo "Running. Try: make ps, make logs, make cqlsh, make topics; stop with make down."

down: ## stop the Docker pipeline (keeps the data volumes)
	$(COMPOSE) down

logs: ## follow the Docker pipeline's logs
	$(COMPOSE) logs -f --tail=100

ps: ## show the Docker pipeline's containers and their health
	$(COMPOSE) ps

topics: ## topics, message counts and consumer lag (Docker or native: Kafka on localhost:9092)
	$(PYTHON) -m stack topics --bootstrap-servers $${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}

clean: ## stop the Docker pipeline and DELETE its volumes (all stored ticks and aggregates)
	@echo "This removes the compose volumes: Kafka, Cassandra and checkpoint data are deleted."
	$(COMPOSE) down -v --remove-orphans

local: ## run the whole pipeline natively, without Docker (Ctrl-C stops everything)
	$(PYTHON) -m stack local --symbols "$(SYMBOLS)" --source "$(SOURCE)" --interval "$(INTERVAL)"

clean-local: ## DELETE the native stack's data, logs and checkpoints (keeps the jar cache)
	$(PYTHON) -m stack down
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/stock-system/run

stack-up: ## start ZooKeeper, Kafka and Cassandra natively on their default ports
	$(PYTHON) -m stack up

stack-down: ## stop the native services
	$(PYTHON) -m stack down

stack-status: ## show whether each native service answers
	$(PYTHON) -m stack status

stack-resolve: ## fetch the Kafka, Cassandra and Spark-connector jars into the cache
	$(PYTHON) -m stack resolve

.PHONY: bench bench-pipeline bench-producer bench-processor bench-storage cqlsh

bench: bench-pipeline bench-producer bench-processor bench-storage ## run every benchmark (prints figures)

bench-pipeline: ## whole pipeline at fixed offered rates: per-stage throughput, end-to-end latency
	$(PYTHON) -m stack.pipeline_bench

bench-producer: ## producer: simulated ticks/s into Kafka beside Kafka's own ProducerPerformance
	$(PYTHON) -m producer.bench

bench-processor: ## processor: sustained ticks/s through Spark over 500 symbols, batch durations
	$(PYTHON) -m processor.bench

bench-storage: ## storage: rows/s into Cassandra beside a naive writer and a multi-process loader
	$(PYTHON) -m storage.bench

cqlsh: ## open cqlsh on whichever stack runs: the compose container, else the native node
	@if $(COMPOSE) ps --status running --services 2>/dev/null | grep -qx cassandra; then \
		$(COMPOSE) exec cassandra cqlsh; \
	else \
		cqlsh $${CASSANDRA_HOSTS:-127.0.0.1} $${CASSANDRA_PORT:-9042}; \
	fi
