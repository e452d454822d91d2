"""HTTPS served directly (``server.tls`` / ``serve --ssl-certfile --ssl-keyfile``), and the
``healthcheck`` command that reads the same configuration.

The certificates are made by ``trustme`` for each test session: a throw-away CA and a server
certificate for ``127.0.0.1`` and ``localhost``; the clients trust that CA only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from adapter.cli import main
from adapter.cli.healthcheck import health_url
from tests.conftest import make_settings

KEY = "tls-test-key-5d1e"
KEY_PASSWORD = "key-password-8c2f"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PEM files: the CA, a server certificate and its key, another key, an encrypted copy
    of the right key, a combined certificate+key file and a file that is not PEM at all."""
    folder = tmp_path_factory.mktemp("pki")
    server = ca.issue_cert("127.0.0.1", "localhost")
    other = ca.issue_cert("localhost")
    files = {
        name: folder / name
        for name in (
            "ca.pem",
            "cert.pem",
            "key.pem",
            "other-key.pem",
            "encrypted-key.pem",
            "combined.pem",
            "garbage.pem",
        )
    }
    ca.cert_pem.write_to_path(str(files["ca.pem"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert.pem"]))
    server.private_key_pem.write_to_path(str(files["key.pem"]))
    other.private_key_pem.write_to_path(str(files["other-key.pem"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(files["combined.pem"]))
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), password=None)
    files["encrypted-key.pem"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    files["garbage.pem"].write_text("this is not a PEM file\n")
    return files


def trusting(pki: dict[str, Path]) -> ssl.SSLContext:
    """A client context that trusts the test CA and nothing else."""
    return ssl.create_default_context(cafile=str(pki["ca.pem"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINY_ADAPTER_")}
    env.update(extra)
    return env


class Served:
    """A ``serve`` child process; ``output`` is what it printed, once it has stopped."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.output = ""


@contextlib.contextmanager
def served(argv: list[str], cwd: Path, env: dict[str, str]) -> Iterator[Served]:
    """``enginy-adapter serve ...`` in a child process; stopped (SIGTERM) at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter", "serve", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = Served(proc)
    try:
        yield child
    finally:
        proc.terminate()
        try:
            child.output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            child.output, _ = proc.communicate()


def wait_until_listening(child: Served, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            output = child.proc.stdout.read() if child.proc.stdout else ""
            raise AssertionError(f"serve exited with {child.proc.returncode}:\n{output}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("serve did not start listening within 30 s")


# --------------------------------------------------------------------------------------------
# Serving HTTPS
# --------------------------------------------------------------------------------------------


def test_https_round_trip_with_the_configured_certificate(
    pki: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        server:
          port: {port}
          root_path: /enginy
          tls: {{certfile: {pki["cert.pem"]}, keyfile: {pki["key.pem"]}}}
        auth: {{keys: [{KEY}]}}
        backend: {{driver: memory}}
        ui: {{password: ui-pass-0a1b}}
        """,
    )
    with served(["--config", str(config)], tmp_path, clean_env()) as proc:
        wait_until_listening(proc, port)
        base = f"https://127.0.0.1:{port}/enginy"
        with httpx.Client(verify=trusting(pki), headers={"X-API-Key": KEY}) as client:
            health = client.get(f"{base}/health")
            assert health.status_code == 200, health.text
            assert health.json() == {"status": "ok"}
            created = client.post(
                f"{base}/contacts",
                json={"contacts": [{"externalId": "tls-1", "email": "ada@example.com"}]},
            )
            assert created.status_code == 200
            assert created.json()["results"][0]["externalId"] == "tls-1"
        # The chain is real: a client that does not trust the test CA refuses it ...
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/health", headers={"X-API-Key": KEY})
        # ... and nothing is served in clear text on that port.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/enginy/health", headers={"X-API-Key": KEY})

        # The health check reads port, root path, scheme and key from the same file.
        assert main(["healthcheck", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert out == f"ok: https://127.0.0.1:{port}/enginy/health answered 200\n"
        assert KEY not in out


def test_serve_flags_replace_the_configured_files_and_keep_the_password(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
        server:
          port: {port}
          tls: {{certfile: {pki["combined.pem"]}, keyfile_password: "${{TLS_KEY_PASSWORD}}"}}
        auth: {{keys: [{KEY}]}}
        backend: {{driver: memory}}
        ui: {{enabled: false}}
        """,
    )
    env = clean_env(TLS_KEY_PASSWORD=KEY_PASSWORD)
    # The flags replace the configured files (a combined PEM); the configured password is kept
    # and opens the encrypted key given by flag.
    argv = [
        "--config",
        str(config),
        "--ssl-certfile",
        str(pki["cert.pem"]),
        "--ssl-keyfile",
        str(pki["encrypted-key.pem"]),
    ]
    with served(argv, tmp_path, env) as proc:
        wait_until_listening(proc, port)
        response = httpx.get(
            f"https://localhost:{port}/health",
            headers={"X-API-Key": KEY},
            verify=trusting(pki),
        )
        assert response.status_code == 200
        assert response.extensions["http_version"] == b"HTTP/1.1"
    assert "Uvicorn running on https://" in proc.output
    assert KEY_PASSWORD not in proc.output


def test_combined_certificate_and_key_file(pki: dict[str, Path]) -> None:
    server = make_settings(server={"tls": {"certfile": str(pki["combined.pem"])}}).server
    assert server.tls is not None
    assert server.tls.uvicorn_options() == {
        "ssl_certfile": str(pki["combined.pem"]),
        "ssl_keyfile": str(pki["combined.pem"]),
        "ssl_keyfile_password": None,
    }


# --------------------------------------------------------------------------------------------
# Validation: each problem named by its YAML path, reported by `check`, fatal for `serve`
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        (
            {"certfile": "{dir}/missing.pem", "keyfile": "{key.pem}"},
            "server.tls.certfile: file not found: {dir}/missing.pem",
        ),
        (
            {"certfile": "{cert.pem}", "keyfile": "{dir}/missing.pem"},
            "server.tls.keyfile: file not found: {dir}/missing.pem",
        ),
        ({"certfile": "{dir}", "keyfile": "{key.pem}"}, "server.tls.certfile: not a file: {dir}"),
        (
            {"certfile": "{key.pem}", "keyfile": "{key.pem}"},
            "server.tls.certfile: no PEM certificate in the file: {key.pem}",
        ),
        (
            {"certfile": "{cert.pem}", "keyfile": "{garbage.pem}"},
            "server.tls.keyfile: no PEM private key in the file: {garbage.pem}",
        ),
        (
            {"certfile": "{cert.pem}", "keyfile": "{other-key.pem}"},
            "server.tls: the private key (keyfile) does not belong to the certificate (certfile)",
        ),
        (
            {"certfile": "{cert.pem}", "keyfile": "{encrypted-key.pem}"},
            "server.tls: the private key is encrypted: set keyfile_password",
        ),
        (
            {
                "certfile": "{cert.pem}",
                "keyfile": "{encrypted-key.pem}",
                "keyfile_password": "not-the-password",
            },
            "server.tls: cannot decrypt the private key with keyfile_password",
        ),
        ({"certfile": "{cert.pem}"}, "server.tls: no usable private key in certfile (set keyfile)"),
        ({"keyfile": "{key.pem}"}, "server.tls.certfile: required option is missing"),
        (
            {"certfile": "{cert.pem}", "key": "{key.pem}"},
            "server.tls.key: unknown option (did you mean 'keyfile'?)",
        ),
    ],
)
def test_check_names_the_yaml_path_of_a_tls_problem(
    pki: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tls: dict[str, str],
    expected: str,
) -> None:
    names = {f"{{{name}}}": str(path) for name, path in pki.items()}
    names["{dir}"] = str(pki["ca.pem"].parent)

    def fill(text: str) -> str:
        for placeholder, value in names.items():
            text = text.replace(placeholder, value)
        return text

    lines = "\n".join(f"    {k}: '{fill(v)}'" for k, v in tls.items())
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  tls:\n{lines}\nbackend: {{driver: memory}}\n")
    assert main(["check", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {fill(expected)}\n"
    assert "not-the-password" not in captured.err
    # serve refuses to start, with the same line, before anything is printed.
    assert main(["serve", "--config", str(config)]) == 1
    assert capsys.readouterr().err == f"error: {fill(expected)}\n"


def test_flag_errors_name_the_flag(
    pki: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pem"
    assert (
        main(["serve", "--ssl-certfile", str(missing), "--ssl-keyfile", str(pki["key.pem"])]) == 1
    )
    assert capsys.readouterr().err == (
        f"error: server.tls.certfile (from --ssl-certfile): file not found: {missing}\n"
    )
    assert main(["serve", "--ssl-keyfile", str(pki["key.pem"])]) == 1
    assert capsys.readouterr().err == (
        "error: --ssl-keyfile needs --ssl-certfile (or server.tls.certfile)\n"
    )


def test_key_password_is_a_secret(pki: dict[str, Path]) -> None:
    settings = make_settings(
        server={
            "tls": {
                "certfile": str(pki["cert.pem"]),
                "keyfile": str(pki["encrypted-key.pem"]),
                "keyfile_password": KEY_PASSWORD,
            }
        }
    )
    assert KEY_PASSWORD in settings.secret_values()
    assert KEY_PASSWORD not in repr(settings)
    assert settings.server.tls is not None
    assert settings.server.tls.uvicorn_options()["ssl_keyfile_password"] == KEY_PASSWORD


# --------------------------------------------------------------------------------------------
# The health check's view of the configuration
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ({}, "http://127.0.0.1:8080/health"),
        (
            {"host": "0.0.0.0", "port": 9000, "root_path": "/enginy"},
            "http://127.0.0.1:9000/enginy/health",
        ),
        ({"host": "::"}, "http://[::1]:8080/health"),
        ({"host": "10.1.2.3"}, "http://10.1.2.3:8080/health"),
        ({"host": "::1"}, "http://[::1]:8080/health"),
    ],
)
def test_health_url_follows_the_server_section(server: dict[str, object], url: str) -> None:
    assert health_url(make_settings(server=server)) == url


def test_healthcheck_reads_the_environment_like_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("ENGINY_ADAPTER_"):
            monkeypatch.delenv(name)
    # As in a fresh process: no logging handlers (earlier tests may leave some installed).
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    port = free_port()
    config = write_config(
        tmp_path,
        """
        auth: {header: X-Enginy-Key}
        backend: {driver: memory}
        ui: {enabled: false}
        """,
    )
    monkeypatch.setenv("ENGINY_ADAPTER_CONFIG", str(config))
    monkeypatch.setenv("ENGINY_ADAPTER_PORT", str(port))
    # No key anywhere: the check cannot authenticate, and says so.
    assert main(["healthcheck"]) == 1
    assert "no API key configured" in capsys.readouterr().err
    monkeypatch.setenv("ENGINY_ADAPTER_API_KEY", KEY)
    # Nothing listening yet: one line, exit 1.
    assert main(["healthcheck", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach http://127.0.0.1:{port}/health: ConnectError")
    assert err.count("\n") == 1
    with served(
        [],
        tmp_path,
        clean_env(
            ENGINY_ADAPTER_CONFIG=str(config),
            ENGINY_ADAPTER_PORT=str(port),
            ENGINY_ADAPTER_API_KEY="another-key-than-the-check-has",
        ),
    ) as proc:
        wait_until_listening(proc, port)
        # The service knows other keys: 401, reported with the service's error code.
        assert main(["healthcheck"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: http://127.0.0.1:{port}/health answered 401 (unauthorized")
        assert KEY not in err
    with served(
        [],
        tmp_path,
        clean_env(
            ENGINY_ADAPTER_CONFIG=str(config),
            ENGINY_ADAPTER_PORT=str(port),
            ENGINY_ADAPTER_API_KEY=KEY,
        ),
    ) as proc:
        wait_until_listening(proc, port)
        # The key goes in the configured header (X-Enginy-Key), the port from the environment.
        assert main(["healthcheck"]) == 0
        assert capsys.readouterr().out == f"ok: http://127.0.0.1:{port}/health answered 200\n"
