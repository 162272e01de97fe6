"""Checks of docker-compose.yml that run without a Docker engine."""

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
PIPELINE = {"producer", "processor", "storage"}
# Services that run this project's code: `python -m <stage> ...`.
OURS = [n for n, s in SERVICES.items() if s.get("command", [])[:2] == ["python", "-m"]]
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


def test_compose_file_validates_against_the_compose_specification():
    # The Compose Specification's schema as vendored (with its licence) by check-jsonschema.
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(COMPOSE, schema)


def test_every_image_tag_is_pinned():
    for name, service in SERVICES.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        if "build" in service:
            continue  # built from this repository's Dockerfile
        repo, _, tag = image.rpartition(":")
        assert repo and tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), f"{name}: {image} not pinned"


def test_host_ports_do_not_clash():
    seen: dict[str, str] = {}
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            host = str(mapping).rsplit(":", 1)[0]
            assert host not in seen, f"host port {host} used by {seen.get(host)} and {name}"
            seen[host] = name


def test_healthy_and_completed_conditions_point_at_services_that_can_meet_them():
    for name, service in SERVICES.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{dep} has no healthcheck for {name}"
            if spec.get("condition") == "service_completed_successfully":
                assert SERVICES[dep].get("restart") == "no", f"{dep} must be a one-shot"


def test_every_service_built_here_runs_a_stage_or_spark():
    for name, service in SERVICES.items():
        if "build" in service:
            command = service["command"]
            assert name in OURS or command[0] == "/opt/spark/bin/spark-class", f"{name}: {command}"
    assert {SERVICES[n]["command"][2] for n in OURS} == PIPELINE


@pytest.mark.parametrize("name", OURS)
def test_pipeline_commands_are_real_entry_points_with_real_flags(name):
    command = SERVICES[name]["command"]
    module = command[2]
    environ = service_env(name)
    parser = parser_for(module, environ)
    parser.parse_args(command[3:])  # a bad flag or env value exits (SystemExit) here


@pytest.mark.parametrize("name", OURS)
def test_environment_names_match_the_settings_the_code_reads(name):
    module = SERVICES[name]["command"][2]
    known = env_names(parser_for(module, {}))
    unknown = set(service_env(name)) - known
    assert not unknown, f"{name} sets variables its code never reads: {sorted(unknown)}"


def test_dockerfile_spark_jars_are_the_ones_the_pom_resolves():
    dockerfile = (ROOT / "Dockerfile").read_text()
    declared = re.search(r"SPARK_JARS=(\S+)", dockerfile).group(1).split(",")
    # Resolves from the jar cache (make install fills it; Maven runs only when it is empty).
    resolved = artifacts.spark_kafka_jars(default_cache_dir())
    assert sorted(Path(p).name for p in declared) == sorted(j.name for j in resolved)
