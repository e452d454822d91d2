"""The files of deploy/: a compose file with Caddy in front, its Caddyfile and configuration,
and a systemd unit. No Docker engine or Caddy runs here, so what is checked is that the pieces
fit together (names, ports, volumes, the configuration loads) and that systemd accepts the
unit (``systemd-analyze verify``, where systemd's tools are installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adapter.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def compose() -> dict[str, dict[str, dict[str, object]]]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_keeps_the_data_and_exposes_only_the_proxy() -> None:
    services = compose()["services"]
    adapter, caddy = services["adapter"], services["caddy"]
    assert "ports" not in adapter, "only Caddy may be reachable from outside"
    assert adapter["build"] == {"context": ".."} and (ROOT / "Dockerfile").exists()
    volumes = adapter["volumes"]
    assert isinstance(volumes, list)
    assert "adapter-data:/data" in volumes
    assert "adapter-data" in compose()["volumes"] and "caddy-data" in compose()["volumes"]
    assert set(caddy["ports"]) >= {"80:80", "443:443"}  # type: ignore[call-overload]
    # Every file mounted from deploy/ exists.
    for service in services.values():
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume
    # Trusting X-Forwarded-For is only safe because the adapter publishes no port.
    environment = adapter["environment"]
    assert isinstance(environment, dict)
    assert environment["FORWARDED_ALLOW_IPS"] == "*"


def test_every_variable_of_the_env_example_is_used_and_required() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    names = re.findall(r"^([A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.M)
    assert names
    for name in names:
        assert f"${{{name}:?" in text, f"{name} is not required by compose.yaml"


def test_caddy_proxies_to_the_adapter_port() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    upstream = re.search(r"^\s*reverse_proxy (\w+):(\d+)\s*$", caddyfile, re.M)
    assert upstream is not None
    assert upstream.group(1) in compose()["services"]
    assert upstream.group(2) in compose()["services"]["adapter"]["expose"]  # type: ignore[operator]
    settings = load_settings(DEPLOY / "config.yaml", {"ENGINY_DOMAIN": "crm.example.com"})
    assert int(upstream.group(2)) == settings.server.port
    assert "{$ENGINY_DOMAIN}" in caddyfile


def test_compose_configuration_loads_with_an_https_base_url() -> None:
    settings = load_settings(DEPLOY / "config.yaml", {"ENGINY_DOMAIN": "crm.example.com"})
    assert settings.ui.public_base_url == "https://crm.example.com"
    assert settings.backend.driver == "sql"  # the default, on the /data volume


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = (DEPLOY / "enginy-adapter.service").read_text()
    executable = Path(sys.executable).with_name("enginy-adapter")
    assert executable.exists()
    # verify wants the ExecStart binary to exist: point it at this environment's.
    unit = unit.replace("/opt/enginy-adapter/.venv/bin/enginy-adapter", str(executable))
    path = tmp_path / "enginy-adapter.service"
    path.write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # Unknown or misspelt directives are only warnings: there must be none.
    assert result.stderr.strip() == ""
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes"):
        assert directive in unit
