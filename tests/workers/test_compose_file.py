"""docker-compose.yml and the Dockerfiles: the production set is complete and consistent.

`.ci/run` also runs `docker compose config` where the compose plugin is installed; this test
checks what that cannot (and runs it too when it can).
"""

from __future__ import annotations

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
