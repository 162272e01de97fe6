"""Resolves the services' jars from Maven Central into a cache outside the repository.

Each bundle is a pom under stack/maven/. A marker file holding the pom's hash records a finished
copy, so a warm cache starts the services without running Maven (and without any network).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MAVEN_DIR = Path(__file__).resolve().parent / "maven"


@dataclass(frozen=True)
class Bundle:
    name: str
    # When set, only these artifacts are copied (the rest already ships with pyspark).
    only: tuple[str, ...] = ()

    @property
    def pom(self) -> Path:
        return MAVEN_DIR / f"{self.name}.xml"


KAFKA = Bundle("kafka")
CASSANDRA = Bundle("cassandra")
SPARK_KAFKA = Bundle(
    "spark-kafka",
    only=(
        "spark-sql-kafka-0-10_2.13",
        "spark-token-provider-kafka-0-10_2.13",
        "kafka-clients",
        "commons-pool2",
    ),
)
BUNDLES = (KAFKA, CASSANDRA, SPARK_KAFKA)


class ResolveError(RuntimeError):
    pass


def bundle_dir(cache_dir: Path, bundle: Bundle) -> Path:
    return cache_dir / "lib" / bundle.name


def _fingerprint(bundle: Bundle) -> str:
    digest = hashlib.sha256(bundle.pom.read_bytes())
    digest.update(",".join(bundle.only).encode())
    return digest.hexdigest()


def is_resolved(cache_dir: Path, bundle: Bundle) -> bool:
    marker = bundle_dir(cache_dir, bundle) / ".resolved"
    return marker.exists() and marker.read_text().strip() == _fingerprint(bundle)


def resolve(cache_dir: Path, bundle: Bundle, mvn: str = "mvn") -> list[Path]:
    """The bundle's jars, running Maven only when the cache does not hold this pom's copy yet."""
    target = bundle_dir(cache_dir, bundle)
    if not is_resolved(cache_dir, bundle):
        if shutil.which(mvn) is None:
            raise ResolveError(
                f"'{mvn}' was not found: install Maven (Debian: apt-get install maven) so the "
                f"{bundle.name} jars can be fetched from Maven Central"
            )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn, "-B", "-q",
            "-s", str(MAVEN_DIR / "settings.xml"),
            "-f", str(bundle.pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        if bundle.only:
            cmd.append(f"-DincludeArtifactIds={','.join(bundle.only)}")
        logger.info("resolving bundle=%s from Maven Central into %s", bundle.name, target)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise ResolveError(f"Maven could not resolve {bundle.name}:\n{tail}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        (target / ".resolved").write_text(_fingerprint(bundle) + "\n")
    jars = sorted(target.glob("*.jar"))
    if not jars:
        raise ResolveError(f"no jars in {target}; delete it and run again")
    return jars


def resolve_all(cache_dir: Path, mvn: str = "mvn") -> dict[str, list[Path]]:
    return {b.name: resolve(cache_dir, b, mvn) for b in BUNDLES}


def spark_kafka_jars(cache_dir: Path, mvn: str = "mvn") -> list[Path]:
    return resolve(cache_dir, SPARK_KAFKA, mvn)


if __name__ == "__main__":
    # The image build runs this file alone (python3 stack/artifacts.py DIR), so that the layer
    # holding the jars depends on nothing but this file and the poms.
    import sys

    logging.basicConfig(level=logging.INFO)
    for name, jars in resolve_all(Path(sys.argv[1])).items():
        print(f"{name}: {len(jars)} jars")
