# Stock-System: `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Every target runs in the project's own virtual environment, made on first use and
# reinstalled only when a requirements file changes (the stamp below).
VENV ?= .venv
BOOTSTRAP_PYTHON ?= python3
PYTHON := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# What the pipeline follows, for `make up` and `make local`: SYMBOLS=AAPL,MSFT SOURCE=yahoo INTERVAL=5
# Unset, each stage uses its own default (declared once, in its settings).
export SYMBOLS SOURCE INTERVAL WINDOWS
# Producers in the fleet (they share the symbols through ZooKeeper): make up runs 2 unless told,
# make local 1.
PRODUCERS ?=
COMPOSE ?= docker compose
# Where `make up` runs Spark: local (the processor's own JVM) or cluster (a standalone master and
# worker: docker-compose.spark-cluster.yml). Give the same SPARK to ps and logs; down and clean
# remove the cluster's containers either way.
SPARK ?= local
ifeq ($(filter $(SPARK),local cluster),)
$(error SPARK=$(SPARK): give SPARK=local (the default) or SPARK=cluster)
endif
# How many nodes of ZooKeeper, Kafka and Cassandra: 1, or 3 (docker-compose.cluster.yml under
# make up; python -m stack up --nodes N under make local and make stack-up, which take 1 to 9).
NODES ?= 1
COMPOSE_FILES := -f docker-compose.yml $(if $(filter cluster,$(SPARK)),-f docker-compose.spark-cluster.yml) \
	$(if $(filter 3,$(NODES)),-f docker-compose.cluster.yml)
# down and clean name every file, so that whatever ran is removed, its volumes too.
ALL_COMPOSE_FILES := -f docker-compose.yml -f docker-compose.spark-cluster.yml -f docker-compose.cluster.yml


.PHONY: up down logs ps compose-files topics clean local clean-local
.PHONY: symbols symbols-add symbols-remove symbols-set
.PHONY: help venv install test test-unit test-integration lint format stack-up stack-down stack-status stack-resolve

$(VENV_STAMP): requirements.txt requirements-dev.txt
	@command -v $(BOOTSTRAP_PYTHON) >/dev/null || { echo "$(BOOTSTRAP_PYTHON) not found: install Python 3.10 or newer (apt-get install python3 python3-venv)"; exit 1; }
	@test -x $(PYTHON) || $(BOOTSTRAP_PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	@touch $@

venv: $(VENV_STAMP) ## create .venv and install the Python packages (done by every target that needs them)

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(VENV_STAMP) ## install Python packages into .venv and fetch the services' jars into ~/.cache
	$(PYTHON) -m stack resolve

test: $(VENV_STAMP) ## run every test: unit, then integration on real ZooKeeper/Kafka/Cassandra/Spark
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

test-unit: $(VENV_STAMP) ## run the fast unit tests only (no services)
	$(PYTHON) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(VENV_STAMP) ## run the integration tests (the harness starts the services)
	$(PYTHON) -m pytest tests/integration $(PYTEST_ARGS)

lint: $(VENV_STAMP) ## ruff lint and format check
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format: $(VENV_STAMP) ## apply ruff's formatting and safe fixes
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

up: ## build the images, start the pipeline in Docker and wait until healthy (SYMBOLS=AAPL,MSFT SOURCE=yahoo make up; SPARK=cluster; NODES=3; PRODUCERS=2)
	@case "$(NODES)" in 1|3) ;; *) echo "make up: NODES=$(NODES): compose runs 1 or 3 nodes (make local NODES=N takes 1 to 9)"; exit 2;; esac
	$(COMPOSE) $(COMPOSE_FILES) up -d --build --wait $(if $(PRODUCERS),--scale producer=$(PRODUCERS))
	@echo "Stock-System is up (project $${COMPOSE_PROJECT_NAME:-stock-system}). Where to look:"
	@echo "  Cassandra  127.0.0.1:$${CASSANDRA_HOST_PORT:-9042}  make cqlsh, then: SELECT * FROM stocks.latest_prices;"
	@echo "  Kafka      127.0.0.1:$${KAFKA_HOST_PORT:-9092}  make topics (sizes and consumer lag)"
	@echo "  Dashboard  http://127.0.0.1:$${DASHBOARD_HOST_PORT:-8050}  (live prices, candles, pipeline health)"
	$(if $(filter cluster,$(SPARK)),@echo "  Spark UI   http://127.0.0.1:$${SPARK_UI_HOST_PORT:-8080}")
	@echo "  Logs       make logs   Health: make ps   Stop: make down (keeps data), make clean (deletes it)"

down: ## stop the Docker pipeline (keeps the data volumes)
	$(COMPOSE) $(ALL_COMPOSE_FILES) down --remove-orphans

logs: ## follow the Docker pipeline's logs
	$(COMPOSE) $(COMPOSE_FILES) logs -f --tail=100

ps: ## show the Docker pipeline's containers and their health
	$(COMPOSE) $(COMPOSE_FILES) ps

compose-files: ## print the compose file arguments for SPARK=local|cluster (bench.idle reads them)
	@echo $(COMPOSE_FILES)

topics: $(VENV_STAMP) ## topics, message counts and consumer lag (Docker or native: Kafka on localhost:9092)
	$(PYTHON) -m stack topics --bootstrap-servers $${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$${KAFKA_HOST_PORT:-9092}}

clean: ## stop the Docker pipeline and DELETE its volumes (all stored ticks and aggregates)
	@echo "This removes the compose volumes: Kafka, Cassandra and checkpoint data are deleted."
	$(COMPOSE) $(ALL_COMPOSE_FILES) down -v --remove-orphans

local: $(VENV_STAMP) ## run the whole pipeline natively, without Docker (Ctrl-C stops everything; NODES=3: on a cluster; PRODUCERS=N: a fleet)
	$(PYTHON) -m stack local $(if $(SYMBOLS),--symbols "$(SYMBOLS)") $(if $(SOURCE),--source "$(SOURCE)") \
		$(if $(INTERVAL),--interval "$(INTERVAL)") $(if $(WINDOWS),--windows "$(WINDOWS)") \
		--nodes "$(NODES)" $(if $(PRODUCERS),--producers "$(PRODUCERS)")

clean-local: $(VENV_STAMP) ## DELETE the native stack's data, logs and checkpoints (keeps the jar cache)
	$(PYTHON) -m stack down
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/stock-system/run

stack-up: $(VENV_STAMP) ## start ZooKeeper, Kafka and Cassandra natively on their default ports (NODES=3: a cluster)
	$(PYTHON) -m stack up --nodes "$(NODES)"

stack-down: $(VENV_STAMP) ## stop the native services
	$(PYTHON) -m stack down

stack-status: $(VENV_STAMP) ## show whether each native service answers
	$(PYTHON) -m stack status

stack-resolve: $(VENV_STAMP) ## fetch the Kafka, Cassandra and Spark-connector jars into the cache
	$(PYTHON) -m stack resolve

.PHONY: bench bench-pipeline bench-faults bench-fleet bench-idle bench-producer bench-processor bench-storage cqlsh
.PHONY: dashboard bench-dashboard bench-history backfill

bench: bench-pipeline bench-faults bench-fleet bench-idle bench-producer bench-processor bench-storage bench-dashboard bench-history ## run every benchmark (prints figures)

bench-pipeline: $(VENV_STAMP) ## whole pipeline at fixed offered rates: per-stage throughput, end-to-end latency
	$(PYTHON) -m bench.pipeline

bench-faults: $(VENV_STAMP) ## a three-node cluster of its own: recovery and tick->row per node killed, replication 3 against 1
	$(PYTHON) -m bench.faults

bench-fleet: $(VENV_STAMP) ## the producers' fleet: handover after a SIGKILL, symbols add -> first tick in Kafka and row in Cassandra
	$(PYTHON) -m bench.fleet

bench-idle: $(VENV_STAMP) ## the pipeline's CPU per process at rest and at 10, 100, 1,000 ticks/s (IDLE_UNDER=compose: as make up runs it; IDLE_ROUNDS=N: N windows in a row)
	$(PYTHON) -m bench.idle

bench-producer: $(VENV_STAMP) ## producer: simulated ticks/s into Kafka beside Kafka's own ProducerPerformance
	$(PYTHON) -m bench.producer

bench-processor: $(VENV_STAMP) ## processor: sustained ticks/s through Spark over 500 symbols, batch durations
	$(PYTHON) -m bench.processor

bench-storage: $(VENV_STAMP) ## storage: rows/s into Cassandra beside a naive writer and a multi-process loader
	$(PYTHON) -m bench.storage

# The fleet's symbol list, changed while the producers run: in make up's producer container when
# one runs, else natively (make local; ZOOKEEPER_HOSTS, default 127.0.0.1:2181).
SYMBOLS_CLI = if $(COMPOSE) ps --status running --services 2>/dev/null | grep -qx producer; then \
	$(COMPOSE) exec -T producer python -m producer symbols "$$@"; \
	else $(PYTHON) -m producer symbols "$$@"; fi
symbols: $(VENV_STAMP) ## the fleet's symbols: who fetches each and its newest tick
	@sh -c '$(SYMBOLS_CLI)' symbols list
symbols-add: $(VENV_STAMP) ## SYMBOLS=IBM,NVDA make symbols-add: fetched from now on, each by one producer
	@test -n "$(SYMBOLS)" || { echo "make symbols-add: give SYMBOLS=..."; exit 2; }
	@sh -c '$(SYMBOLS_CLI)' symbols add "$(SYMBOLS)"
symbols-remove: $(VENV_STAMP) ## SYMBOLS=IBM make symbols-remove: no longer fetched
	@test -n "$(SYMBOLS)" || { echo "make symbols-remove: give SYMBOLS=..."; exit 2; }
	@sh -c '$(SYMBOLS_CLI)' symbols remove "$(SYMBOLS)"
symbols-set: $(VENV_STAMP) ## SYMBOLS=AAPL,MSFT make symbols-set: exactly these from now on
	@test -n "$(SYMBOLS)" || { echo "make symbols-set: give SYMBOLS=..."; exit 2; }
	@sh -c '$(SYMBOLS_CLI)' symbols set "$(SYMBOLS)"

# History into the bars topic (storage keeps it in the bars table): in make up's producer
# container when one runs, else natively against the running stack.
BACKFILL_CLI = if $(COMPOSE) ps --status running --services 2>/dev/null | grep -qx producer; then \
	$(COMPOSE) exec -T producer python -m producer backfill "$$@"; \
	else $(PYTHON) -m producer backfill "$$@"; fi
backfill: $(VENV_STAMP) ## SYMBOLS=AAPL,MSFT RANGE=5d INTERVAL=1m make backfill: a source's history into Cassandra
	@test -n "$(SYMBOLS)" || { echo "make backfill: give SYMBOLS=... (and RANGE=5d INTERVAL=1m)"; exit 2; }
	@sh -c '$(BACKFILL_CLI)' backfill "$(SYMBOLS)" --range "$(or $(RANGE),5d)" --interval "$(or $(INTERVAL),1m)"

cqlsh: $(VENV_STAMP) ## open cqlsh on whichever stack runs: the compose container, else the native node
	@if $(COMPOSE) ps --status running --services 2>/dev/null | grep -qx cassandra; then \
		$(COMPOSE) exec cassandra cqlsh; \
	else \
		$(VENV)/bin/cqlsh $${CASSANDRA_HOSTS:-127.0.0.1} $${CASSANDRA_PORT:-9042}; \
	fi

dashboard: $(VENV_STAMP) ## the dashboard alone, on running services: http://127.0.0.1:8050/ (DASHBOARD_PORT)
	$(PYTHON) -m dashboard

bench-dashboard: $(VENV_STAMP) ## dashboard: tick->page latency in chromium, 100 live clients' CPU, /api/bars for a day
	$(PYTHON) -m bench.dashboard

bench-history: $(VENV_STAMP) ## history: 195,000 backfilled bars/s into Cassandra, a new symbol's 5 days on the chart, a gap filled
	$(PYTHON) -m bench.history
