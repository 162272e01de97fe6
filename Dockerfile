# Every image of the compose stack, built FROM one Debian base plus Debian packages, PyPI (the
# pinned requirements) and Maven Central (the same poms the native stack resolves):
#   --target kafka      ZooKeeper and Kafka 3.9.2 (ZooKeeper mode), and the topics init job
#   --target cassandra  Cassandra 5.0.8 and cqlsh
#   --target app        producer, processor (Spark from the pyspark wheel), storage, dashboard, the
#                       schema init job, and with SPARK=cluster the Spark master and worker
#                       (executors run the processor's Python UDF: the same Python and code)
# The services are configured and started by `python -m stack.serve run`, the code that writes the
# native stack's configs. Point BASE at another registry or mirror with --build-arg BASE=...
ARG BASE=debian:bookworm-slim

# --- build stages ------------------------------------------------------------------------------
FROM ${BASE} AS jars
COPY scripts/image/ /usr/local/bin/
RUN apt-install maven python3
# Only the resolver and the poms: a change elsewhere in stack/ does not refetch the jars.
COPY stack/artifacts.py /src/stack/artifacts.py
COPY stack/maven /src/stack/maven
RUN python3 /src/stack/artifacts.py /opt/stock-system && rm -rf /root/.m2

FROM ${BASE} AS runtime
COPY scripts/image/ /usr/local/bin/
RUN apt-install openjdk-17-jre-headless python3 \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin stock \
 && mkdir -p /data/checkpoints /app \
 && chown -R stock:stock /data
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH \
    STACK_CACHE_DIR=/opt/stock-system \
    STACK_RUN_DIR=/data
WORKDIR /app

FROM runtime AS venv
RUN apt-install python3-venv
COPY requirements.txt requirements-dev.txt /tmp/

# One virtualenv per image, with only what that image runs (versions pinned in the requirements
# files; scripts/image/make-venv).
FROM venv AS kafka-venv
RUN make-venv '^kafka-python==' /tmp/requirements.txt

FROM venv AS cassandra-venv
RUN make-venv '^(cqlsh|cassandra-driver)==' /tmp/requirements.txt /tmp/requirements-dev.txt

FROM venv AS app-venv
RUN make-venv -v '^docker==' /tmp/requirements.txt

# --- images ------------------------------------------------------------------------------------
# The two service images: a virtualenv, the service's jars, and `stack.serve` to run it. Only the
# service's name differs; they stay written out because the builder of Debian's Docker 20.10
# does not expand a build argument in COPY --from ("failed to parse stage name"), so one stage
# cannot be parameterised by the service.
FROM runtime AS kafka
COPY --from=kafka-venv /opt/venv /opt/venv
COPY --from=jars /opt/stock-system/lib/kafka /opt/stock-system/lib/kafka
COPY common ./common
COPY stack ./stack
USER stock
CMD ["python", "-m", "stack.serve", "run", "kafka"]

FROM runtime AS cassandra
COPY --from=cassandra-venv /opt/venv /opt/venv
COPY --from=jars /opt/stock-system/lib/cassandra /opt/stock-system/lib/cassandra
COPY common ./common
COPY stack ./stack
USER stock
CMD ["python", "-m", "stack.serve", "run", "cassandra"]

FROM runtime AS app
COPY --from=app-venv /opt/venv /opt/venv
COPY --from=jars /opt/stock-system/lib/spark-kafka /opt/stock-system/lib/spark-kafka
# Spark's own launcher scripts and jars come with the pyspark wheel.
ENV SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    SPARK_WORKER_DIR=/data/spark-work \
    SPARK_DAEMON_MEMORY=256m
# The exact jar names follow from stack/maven/spark-kafka.xml (tests/unit/test_compose.py checks).
ENV SPARK_JARS=/opt/stock-system/lib/spark-kafka/spark-sql-kafka-0-10_2.13-4.1.1.jar,/opt/stock-system/lib/spark-kafka/spark-token-provider-kafka-0-10_2.13-4.1.1.jar,/opt/stock-system/lib/spark-kafka/kafka-clients-3.9.1.jar,/opt/stock-system/lib/spark-kafka/commons-pool2-2.12.1.jar
COPY common ./common
COPY stack ./stack
COPY producer ./producer
COPY processor ./processor
COPY storage ./storage
COPY dashboard ./dashboard
USER stock
CMD ["python", "-m", "producer"]
