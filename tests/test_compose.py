"""Deployment files: docker-compose.yml against the Compose Specification, every command
parsed by our CLI, the Dockerfile's promises, and its healthcheck run for real.

No Docker engine runs on these machines, so this is what stands in for `docker compose
config` and `docker build` (README "Deployment: Docker and compose").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest

from tests.conftest import ROOT

yaml = pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_compose_file_is_valid_against_the_compose_spec(compose, shared_dir):
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = shared_dir / "schemas" / "compose-spec.json"
    if not schema_path.is_file():
        pytest.skip("no compose-spec.json in ../shared/schemas")
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_the_schema_check_catches_a_broken_file(compose, shared_dir):
    """The validation above can fail: a typo in a key is reported."""
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = shared_dir / "schemas" / "compose-spec.json"
    if not schema_path.is_file():
        pytest.skip("no compose-spec.json in ../shared/schemas")
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["deploy"]["replica"] = 3  # not "replicas"
    validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
    assert any("replica" in error.message for error in validator.iter_errors(broken))


def our_services(compose) -> dict:
    """Services that run our image (the rest, e.g. redis, run someone else's)."""
    return {name: service for name, service in compose["services"].items()
            if service.get("image", "").startswith("banana-monitor") or "build" in service}


def parse_with_cli(args: list[str]) -> click.Context:
    """Parse ``banana-monitor ARGS`` as click would, down to the subcommand; no run."""
    from monitor.cli import main

    ctx = main.make_context("banana-monitor", list(args))
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args (merged in 9)
        warnings.simplefilter("ignore", DeprecationWarning)
        remaining = [*ctx.protected_args, *ctx.args]
    name, command, rest = main.resolve_command(ctx, remaining)
    return command.make_context(name, rest, parent=ctx)


def test_every_service_command_parses_with_our_cli(compose):
    services = our_services(compose)
    assert set(services) == {"monitor", "learner", "worker"}
    parsed = {name: parse_with_cli(service["command"]) for name, service in services.items()}
    assert {name: ctx.info_name for name, ctx in parsed.items()} == dict.fromkeys(services, "run")
    assert parsed["worker"].params["role"] == "scorer"
    assert parsed["learner"].params["role"] == "learner"
    assert parsed["worker"].params["source"] == "redis://redis:6379/0"


def test_a_bad_command_does_not_parse():
    with pytest.raises(click.UsageError):
        parse_with_cli(["run", "--role", "boss"])
    with pytest.raises(click.UsageError):
        parse_with_cli(["run", "--no-such-flag"])


def test_cluster_profile_has_redis_learner_and_three_workers(compose):
    services = compose["services"]
    assert "profiles" not in services["monitor"]  # the embedded default starts by default
    for name in ("redis", "learner", "worker"):
        assert services[name]["profiles"] == ["cluster"]
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "./feed:/data/feed" in services["monitor"]["volumes"]
    assert "./models:/data/models:ro" in services["monitor"]["volumes"]
    for volume in services["monitor"]["volumes"]:
        source = volume.split(":", 1)[0]
        if source.startswith("./"):
            assert source in ("./feed", "./models")
    assert (ROOT / "models").is_dir()


def test_dockerfile_slim_base_non_root_package_installed_healthcheck(dockerfile):
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'pip install "\.\[redis\]"', dockerfile)
    assert 'ENTRYPOINT ["banana-monitor"]' in dockerfile
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"monitor", "plugins", "models", "pyproject.toml"} & set(ignored)


@pytest.mark.slow
def test_the_image_compiles_the_learning_kernels_at_build_time(dockerfile, tmp_path):
    """The build's warm-up RUN line, run as written (Docker joins the continued line),
    as the image's user would: numba's cache lands in the given cache directory."""
    joined = dockerfile.replace("\\\n", "")
    runs = re.findall(r'^RUN python -c "(.+)"$', joined, re.M)
    assert len(runs) == 1 and "warm_kernels()" in runs[0]
    assert joined.index(runs[0]) > joined.index("USER monitor")  # cached for that user
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    subprocess.run([sys.executable, "-c", runs[0]], check=True, env=env, timeout=600)
    cached = [p.name for p in (tmp_path / "numba").rglob("*.nbi")]
    assert any("learn_tokens" in name for name in cached), cached


def healthcheck_command(dockerfile: str) -> str:
    match = re.search(r"^HEALTHCHECK .*?\\\n\s+CMD (.+)$", dockerfile, re.M)
    assert match, "no HEALTHCHECK ... CMD"
    return match.group(1)


def test_the_healthcheck_passes_for_a_running_daemon_and_fails_otherwise(dockerfile, tmp_path):
    """The HEALTHCHECK line itself, run by sh in the image's layout (/data → tmp_path)."""
    from monitor.ledger import Ledger

    command = healthcheck_command(dockerfile)
    assert command.startswith("banana-monitor status")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "BANANA_MONITOR_FEED": str(tmp_path / "feed"),
           "BANANA_MONITOR_STATE": str(tmp_path / "state")}
    (tmp_path / "feed").mkdir()

    def health() -> int:
        return subprocess.run(["sh", "-c", command], env=env, cwd=tmp_path,
                              capture_output=True).returncode

    assert health() != 0  # no state yet: the daemon never ran
    ledger = Ledger(tmp_path / "state")
    ledger.set_meta(pid=os.getpid(), started_at=1.0, heartbeat=1.0, stopped_at=None)
    assert health() == 0  # this process stands in for a running daemon
    ledger.set_meta(stopped_at=2.0)
    assert health() == 1
    ledger.close()
