"""Checks of docker-compose.yml, alone and with docker-compose.spark-cluster.yml (make up
SPARK=cluster) or docker-compose.cluster.yml (make up NODES=3), that run without a Docker
engine."""

from __future__ import annotations

import argparse
import importlib
import importlib.resources
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from stack import artifacts
from stack.settings import default_cache_dir

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def merged(base: dict, override: dict) -> dict:
    """Compose's merge of a second file over the first, as far as these files use it: mappings
    merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


SPARK_CLUSTER = merged(
    COMPOSE, yaml.safe_load((ROOT / "docker-compose.spark-cluster.yml").read_text())
)
NODES3 = merged(COMPOSE, yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text()))
# The ways `make up` runs: Spark inside the processor, or on a standalone master and worker; and
# every service on three nodes (NODES=3).
MODELS = {"local": COMPOSE, "spark-cluster": SPARK_CLUSTER, "nodes3": NODES3}
PIPELINE = {"producer", "processor", "storage"}
STAGES = PIPELINE | {"dashboard"}
# Services that run a stage of this project: `python -m <stage> ...`.
OURS = [
    n
    for n, s in SERVICES.items()
    if s.get("command", [])[:2] == ["python", "-m"] and s["command"][2] in STAGES
]
# Services the native stack's code configures and starts: `python -m stack.serve ...`.
STACK = [
    n for n, s in SERVICES.items() if s.get("command", [])[:3] == ["python", "-m", "stack.serve"]
]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value: object) -> str:
    """What compose makes of a value when none of the ${VARS} are set: their defaults."""
    return _VAR.sub(lambda m: m.group(2) or "", str(value)).replace("$$", "$")


def service_env(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(v) for k, v in env.items()}


def parser_for(module: str, environ: dict[str, str]):
    # Each stage builds its parser in <stage>/settings.py (flags and env twins in one place).
    settings = importlib.import_module(f"{module}.settings")
    return settings.build_parser(environ=environ)


def env_names(parser) -> set[str]:
    text = parser.format_help()
    # "[env: NAME]" beside a flag; secrets are environment-only and named in the epilog.
    names = set(re.findall(r"\[env:\s+(\w+)\]", text))
    names |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s+\(environment only", text))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= env_names(sub)
    return names


@pytest.mark.parametrize("model", MODELS)
def test_compose_file_validates_against_the_compose_specification(model):
    # The Compose Specification's schema as vendored (with its licence) by check-jsonschema.
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(MODELS[model], schema)


@pytest.mark.parametrize("model", MODELS)
def test_every_image_tag_is_pinned(model):
    services = MODELS[model]["services"]
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        if any(s.get("build") and s["image"] == image for s in services.values()):
            continue  # built from this repository's Dockerfile
        repo, _, tag = image.rpartition(":")
        assert repo and tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), f"{name}: {image} not pinned"


@pytest.mark.parametrize("model", MODELS)
def test_host_ports_do_not_clash(model):
    services = MODELS[model]["services"]
    seen: dict[str, str] = {}
    for name, service in services.items():
        for mapping in service.get("ports", []):
            host = str(mapping).rsplit(":", 1)[0]
            assert host not in seen, f"host port {host} used by {seen.get(host)} and {name}"
            seen[host] = name


@pytest.mark.parametrize("model", MODELS)
def test_healthy_and_completed_conditions_point_at_services_that_can_meet_them(model):
    services = MODELS[model]["services"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck for {name}"
            if spec.get("condition") == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} must be a one-shot"


@pytest.mark.parametrize("model", MODELS)
def test_every_healthcheck_is_a_stack_probe_that_parses(model):
    from stack import serve

    checks = {n: s["healthcheck"]["test"] for n, s in MODELS[model]["services"].items()
              if "healthcheck" in s}  # fmt: skip
    assert {"dashboard", "kafka", "cassandra"} <= set(checks)
    for name, test in checks.items():
        assert test[:5] == ["CMD", "python", "-m", "stack.serve", "probe"], f"{name}: {test}"
        args = serve.build_parser(environ={}).parse_args(test[4:])
        assert args.service in name or name in args.service, f"{name} probes {args.service}"


@pytest.mark.parametrize("model", MODELS)
def test_every_service_runs_a_stage_the_stack_or_spark(model):
    for name, service in MODELS[model]["services"].items():
        command = service["command"]
        spark = command[0] == "bash" and "$$SPARK_HOME/bin/spark-class" in command[-1]
        stack = command[:3] == ["python", "-m", "stack.serve"]
        assert name in OURS or stack or spark, f"{name}: {command}"
    assert PIPELINE <= {SERVICES[n]["command"][2] for n in OURS}
    served = {SERVICES[n]["command"][4] for n in STACK if SERVICES[n]["command"][3] == "run"}
    assert served == {"zookeeper", "kafka", "cassandra"}


def test_spark_runs_in_the_processor_unless_the_cluster_file_is_added():
    from processor.settings import ProcessorSettings

    assert "SPARK_MASTER" not in service_env("processor")  # the processor's own default:
    assert ProcessorSettings.__dataclass_fields__["spark_master"].default.startswith("local[")
    assert not {"spark-master", "spark-worker"} & set(SERVICES)
    cluster = SPARK_CLUSTER["services"]
    master = re.search(r"--host (\S+) --port (\d+)", cluster["spark-master"]["command"][-1])
    submitted_to = interpolate(cluster["processor"]["environment"]["SPARK_MASTER"])
    assert submitted_to == f"spark://{master.group(1)}:{master.group(2)}"
    assert master.group(1) == cluster["spark-master"]["hostname"]
    # Its executors need a worker before the first batch; the state store is in the checkpoint,
    # which the driver and the executors must both see.
    assert cluster["processor"]["depends_on"]["spark-worker"]["condition"] == "service_healthy"
    mounts = {v for n in ("processor", "spark-worker") for v in cluster[n]["volumes"]}
    assert mounts == {"processor-checkpoints:/data/checkpoints"}


@pytest.mark.parametrize("name", STACK)
def test_stack_commands_and_their_environment_are_real(name):
    from stack import serve

    environ = service_env(name)
    serve.build_parser(environ=environ).parse_args(
        [interpolate(arg) for arg in SERVICES[name]["command"][3:]]
    )
    unknown = set(environ) - env_names(serve.build_parser(environ={}))
    assert not unknown, f"{name} sets variables stack.serve never reads: {sorted(unknown)}"
    healthcheck = SERVICES[name].get("healthcheck", {}).get("test", [])
    if healthcheck:
        serve.build_parser(environ={}).parse_args(healthcheck[4:])


@pytest.mark.parametrize("model", MODELS)
def test_every_image_is_built_here_from_the_one_base(model):
    services = MODELS[model]["services"]
    # No registry may be needed beyond the one BASE comes from: each image is built by exactly
    # one service, and the others running it never try to pull it.
    builders = {s["image"]: n for n, s in services.items() if "build" in s}
    assert len(builders) == sum("build" in s for s in services.values()), "an image built twice"
    for name, service in services.items():
        assert service["image"] in builders, f"{name}: {service['image']} is built by no service"
        build = service.get("build")
        if build is None:
            assert service.get("pull_policy") == "never", name
            continue
        assert build["args"]["BASE"] == "${BASE:-debian:bookworm-slim}", name
        assert f"AS {build['target']}" in DOCKERFILE, f"{name}: no stage {build['target']}"
        assert service.get("pull_policy") in (None, "missing", "build", "never"), name
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.M))
    for line in re.findall(r"^FROM .*$", DOCKERFILE, re.M):
        source = line.split()[1]
        assert source == "${BASE}" or source in stages, line
    assert "ARG BASE=debian:bookworm-slim" in DOCKERFILE
    assert "--pull" not in DOCKERFILE


def test_every_image_runs_as_a_user_other_than_root():
    images = {s["build"]["target"] for s in SERVICES.values() if "build" in s}
    for target in images:
        body = DOCKERFILE.split(f"AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        users = re.findall(r"^USER (\S+)$", body, re.M)
        assert users and users[-1] not in ("root", "0"), f"image {target} runs as root"


@pytest.mark.parametrize("model", MODELS)
def test_published_ports_listen_on_loopback_unless_told_otherwise(model):
    services = MODELS[model]["services"]
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {mapping}"
            assert interpolate(mapping).startswith("127.0.0.1:"), f"{name}: {mapping}"


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", str(size).lower()).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit]


# What each way of running may hold at most: one node fits a laptop with 8 GB free; three nodes
# of everything fit a 16 GB one (docker-compose.cluster.yml's header says so too).
MEMORY_BUDGET = {"local": 8 * 2**30, "spark-cluster": 8 * 2**30, "nodes3": 12 * 2**30}


@pytest.mark.parametrize("model", MODELS)
def test_memory_limits_fit_the_machine_each_way_is_for(model):
    services = MODELS[model]["services"]
    limits = {name: service.get("mem_limit") for name, service in services.items()}
    assert all(limits.values()), f"services without a memory limit: {limits}"
    # The one-shot init jobs have exited before the pipeline's stages start.
    running = [n for n, s in services.items() if s.get("restart") != "no"]
    assert sum(_bytes(limits[n]) for n in running) < MEMORY_BUDGET[model]


@pytest.mark.parametrize("model", MODELS)
def test_long_running_services_restart_and_keep_data_in_named_volumes(model):
    services = MODELS[model]["services"]
    for name, service in services.items():
        if service.get("restart") != "no":
            assert service.get("restart") == "unless-stopped", name
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            assert source in MODELS[model]["volumes"], f"{name}: {volume} is not a named volume"


@pytest.mark.parametrize("name", OURS)
def test_pipeline_commands_are_real_entry_points_with_real_flags(name):
    command = SERVICES[name]["command"]
    module = command[2]
    environ = service_env(name)
    parser = parser_for(module, environ)
    args = parser.parse_args(command[3:])  # a bad flag or env value exits (SystemExit) here
    # And what compose sets is what the stage gets: each variable its parser declares.
    checked = 0
    for action in parser._actions:
        found = re.search(r"\[env: (\w+)\]", action.help or "")
        raw = environ.get(found.group(1), "") if found else ""
        if raw and hasattr(args, action.dest):  # empty: unset, the stage's default
            assert getattr(args, action.dest) == (action.type(raw) if action.type else raw)
            checked += 1
    assert checked, f"{name}: none of its environment reaches its settings"


@pytest.mark.parametrize("name", OURS)
def test_environment_names_match_the_settings_the_code_reads(name):
    module = SERVICES[name]["command"][2]
    known = env_names(parser_for(module, {}))
    unknown = set(service_env(name)) - known
    assert not unknown, f"{name} sets variables its code never reads: {sorted(unknown)}"


def test_dockerfile_spark_jars_are_the_ones_the_pom_resolves():
    declared = re.search(r"SPARK_JARS=(\S+)", DOCKERFILE).group(1).split(",")
    # Resolves from the jar cache (make install fills it; Maven runs only when it is empty).
    resolved = artifacts.spark_kafka_jars(default_cache_dir())
    assert sorted(Path(p).name for p in declared) == sorted(j.name for j in resolved)
