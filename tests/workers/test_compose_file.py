"""docker-compose.yml and the Dockerfiles: the production set is complete and consistent.

`.ci/run` also runs `docker compose config` where the compose plugin is installed; this test
checks what that cannot (and runs it too when it can).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_is_there_and_wired(compose):
    services = compose["services"]
    assert {"neo4j", "redis", "postgres", "api", "worker", "migrate"} <= set(services)
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], (name, volume)
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        hosts = re.findall(r"@?//(?:[^@/]*@)?([a-z0-9]+):", " ".join(map(str, env.values())))
        assert set(hosts) <= set(services), (name, hosts)
        assert env["KGEDIT_BROKER_URL"].startswith("redis://redis:")
        assert env["KGEDIT_METADATA_URL"].startswith("postgresql+psycopg://")
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["worker"]["environment"]["KGEDIT_DEVICE"] == "cuda"
    assert services["migrate"]["command"] == ["kgedit", "db", "upgrade"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def _url_hosts(env: dict) -> set[str]:
    """Return the service names the URLs of an environment point at."""
    return set(re.findall(r"//(?:[^@/\s]*@)?([a-z0-9_-]+):\d+", " ".join(map(str, env.values()))))


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck") or {}
        if service.get("restart") == "no":  # a one-shot job: its dependants wait for its exit
            assert check == {"disable": True}, name
            continue
        assert check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    tests = {
        name: " ".join(s["healthcheck"].get("test", [])) for name, s in compose["services"].items()
    }
    assert "/readyz" in tests["api"] and "workers.healthcheck api" in tests["api"]
    assert "workers.healthcheck worker" in tests["worker"]
    assert "redis-cli ping" in tests["redis"] and "pg_isready" in tests["postgres"]
    assert "cypher-shell" in tests["neo4j"]


def test_dependencies_match_the_configured_urls(compose):
    services = compose["services"]
    for name in ("api", "worker"):
        service = services[name]
        needed = _url_hosts(service["environment"])
        waits = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert waits.pop("migrate") == "service_completed_successfully", name
        assert set(waits) == needed, (name, waits, needed)  # nothing unused, nothing missing
        assert set(waits.values()) == {"service_healthy"}, (name, waits)
        for dep in waits:
            assert "profiles" not in services[dep], f"{name} waits for optional {dep}"
    graph = services["api"]["environment"]["KGEDIT_GRAPH_URL"]
    assert "neo4j" not in _url_hosts({"graph": graph}) and services["neo4j"]["profiles"]
    migrate = services["migrate"]
    databases = {k: migrate["environment"][k] for k in ("KGEDIT_METADATA_URL", "KGEDIT_GRAPH_URL")}
    assert _url_hosts(databases) == set(migrate["depends_on"])  # it migrates both databases


def test_model_roots_cover_the_mounted_models(compose):
    from workers.settings import Settings

    for name in ("api", "worker"):
        service = compose["services"][name]
        mounts = [v.split(":")[1] for v in service["volumes"] if v.startswith("./models:")]
        assert mounts == ["/models"], name
        env = {k: str(v) for k, v in service["environment"].items()}
        roots = Settings(model_roots=json.loads(env["KGEDIT_MODEL_ROOTS"])).model_roots
        assert [str(r) for r in roots] == mounts, name


def test_the_healthcheck_module_runs_what_compose_names(compose):
    from workers import healthcheck

    for name in ("api", "worker"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[1:4] == ["python", "-m", "workers.healthcheck"], name
        assert healthcheck.main(["nonsense"]) == 2


@pytest.mark.parametrize("name", ["api", "worker"])
def test_dockerfiles_copy_what_exists_and_drop_root(compose, name):
    build = compose["services"][name]["build"]
    dockerfile = (REPO / build["context"] / build["dockerfile"]).read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"{name}: COPY {source} does not exist"
    assert "USER kgedit" in dockerfile
    assert re.search(r'torch==2\.13\.\*"? --index-url', dockerfile)


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker client without the compose plugin")
    result = subprocess.run(
        [docker, "compose", "config", "--quiet"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
