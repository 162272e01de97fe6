# One image for the pipeline (producer, processor, storage) and for the Spark master and worker.
# It is the official Spark image plus this project: the processor validates ticks with a Python
# UDF, so the driver and the executors must run the same Python and have the same code.

FROM maven:3.9.9-eclipse-temurin-17 AS jars
COPY stack/maven /maven
RUN mvn -B -q -s /maven/settings.xml -f /maven/spark-kafka.xml dependency:copy-dependencies \
      -DincludeArtifactIds=spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2 \
      -DoutputDirectory=/jars

# Spark 4.1.1 (the pinned pyspark's version), Java 17, Python 3.10.
FROM apache/spark:4.1.1-scala2.13-java17-python3-ubuntu
USER root
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --from=jars /jars /opt/stock-system/jars
# The exact jar names follow from stack/maven/spark-kafka.xml (tests/unit/test_compose.py checks).
ENV SPARK_JARS=/opt/stock-system/jars/spark-sql-kafka-0-10_2.13-4.1.1.jar,/opt/stock-system/jars/spark-token-provider-kafka-0-10_2.13-4.1.1.jar,/opt/stock-system/jars/kafka-clients-3.9.1.jar,/opt/stock-system/jars/commons-pool2-2.12.1.jar \
    PYTHONPATH=/app
COPY common ./common
COPY stack ./stack
COPY producer ./producer
COPY processor ./processor
COPY storage ./storage
RUN mkdir -p /data && chown spark /data
USER spark
