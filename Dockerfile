# One image for the three pipeline stages (producer, processor, storage): Python 3.11, a Java 17
# runtime for the Spark driver, and Spark's Kafka connector jars resolved by our own pom.

FROM maven:3.9.9-eclipse-temurin-17 AS jars
COPY stack/maven /maven
RUN mvn -B -q -s /maven/settings.xml -f /maven/spark-kafka.xml dependency:copy-dependencies \
      -DincludeArtifactIds=spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2 \
      -DoutputDirectory=/jars

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --from=jars /jars /opt/stock-system/jars
# The exact jar names follow from stack/maven/spark-kafka.xml (tests/unit/test_compose.py checks).
ENV SPARK_JARS=/opt/stock-system/jars/spark-sql-kafka-0-10_2.13-4.1.1.jar,/opt/stock-system/jars/spark-token-provider-kafka-0-10_2.13-4.1.1.jar,/opt/stock-system/jars/kafka-clients-3.9.1.jar,/opt/stock-system/jars/commons-pool2-2.12.1.jar
COPY common ./common
COPY stack ./stack
COPY producer ./producer
COPY processor ./processor
COPY storage ./storage
RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
USER app
