# Stock-System: `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
PYTEST_ARGS ?=

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

stack-up: ## start ZooKeeper, Kafka and Cassandra natively on their default ports
	$(PYTHON) -m stack up

stack-down: ## stop the native services
	$(PYTHON) -m stack down

stack-status: ## show whether each native service answers
	$(PYTHON) -m stack status

stack-resolve: ## fetch the Kafka, Cassandra and Spark-connector jars into the cache
	$(PYTHON) -m stack resolve

.PHONY: bench bench-producer bench-processor bench-storage cqlsh

bench: bench-producer bench-processor bench-storage ## run every benchmark (prints figures)

bench-producer: ## producer: simulated ticks/s into Kafka beside Kafka's own ProducerPerformance
	$(PYTHON) -m producer.bench

bench-processor: ## processor: sustained ticks/s through Spark over 500 symbols, batch durations
	$(PYTHON) -m processor.bench

bench-storage: ## storage: rows/s into Cassandra beside a naive writer and a multi-process loader
	$(PYTHON) -m storage.bench

cqlsh: ## open cqlsh on the running stack (native or compose)
	cqlsh $${CASSANDRA_HOSTS:-127.0.0.1} $${CASSANDRA_PORT:-9042}
