"""``server.tls``: serve HTTPS directly, without a reverse proxy.

::

    server:
      tls:
        certfile: /etc/enginy-adapter/tls/fullchain.pem   # the certificate chain, PEM
        keyfile: /etc/enginy-adapter/tls/privkey.pem      # its private key, PEM (default: certfile)
        keyfile_password: ${TLS_KEY_PASSWORD}            # only for an encrypted key

Unlike the rest of :mod:`adapter.config`, this section looks at the disk when it is validated:
the files are read and the key is matched against the certificate (with Python's own
:class:`ssl.SSLContext`, as uvicorn will load them), so that ``enginy-adapter check`` reports a
missing file, a key that is not a key or a key of another certificate with its YAML path, and
``serve`` refuses to start instead of failing in uvicorn's start-up with a bare ``PEM lib``.
Relative paths are relative to the working directory, like the SQLite file of the default
backend. The files are read once at start-up: restart the service after renewing a certificate.
Python's defaults apply otherwise: TLS 1.2 at least, OpenSSL's default cipher suites.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator, model_validator

from adapter.config.fields import Section

__all__ = ["TLSConfig"]


def _read(path: Path) -> str:
    """The file's text; a ``ValueError`` that says why it cannot be read."""
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read the file ({exc.strerror}): {path}") from None


def _has_certificate(path: Path) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError):
        return False
    return True


class TLSConfig(Section):
    """``server.tls`` — a certificate chain and its private key, both PEM."""

    #: The certificate, followed by the intermediate certificates (a "full chain").
    certfile: Path
    #: The private key of the certificate. ``null``: the key is in ``certfile``.
    keyfile: Path | None = None
    #: The password of an encrypted key; keep it in the environment (``${VAR}``).
    keyfile_password: SecretStr | None = None

    @field_validator("certfile")
    @classmethod
    def _check_certfile(cls, path: Path) -> Path:
        _read(path)
        if not _has_certificate(path):
            raise ValueError(f"no PEM certificate in the file: {path}")
        return path.absolute()

    @field_validator("keyfile")
    @classmethod
    def _check_keyfile(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        text = _read(path)
        if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
            raise ValueError(f"no PEM private key in the file: {path}")
        return path.absolute()

    @model_validator(mode="after")
    def _key_matches_certificate(self) -> TLSConfig:
        key = self.keyfile or self.certfile
        password = self.keyfile_password
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            # A callable, never None: OpenSSL would otherwise ask for the password on the
            # terminal when the key is encrypted.
            context.load_cert_chain(
                str(self.certfile),
                str(key),
                password=lambda: password.get_secret_value() if password is not None else "",
            )
        except ssl.SSLError as exc:
            raise ValueError(self._load_error(exc, key)) from None
        return self

    def _load_error(self, exc: ssl.SSLError, key: Path) -> str:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the private key (keyfile) does not belong to the certificate (certfile)"
        text = _read(key)
        if "ENCRYPTED" in text:
            if self.keyfile_password is None:
                return "the private key is encrypted: set keyfile_password"
            return "cannot decrypt the private key with keyfile_password"
        if self.keyfile is None:
            return "no usable private key in certfile (set keyfile)"
        return f"the private key cannot be loaded ({exc.reason or 'not a PEM key'})"

    def uvicorn_options(self) -> dict[str, Any]:
        """The ``ssl_*`` arguments of :func:`uvicorn.run` / :class:`uvicorn.Config`."""
        password = self.keyfile_password
        return {
            "ssl_certfile": str(self.certfile),
            "ssl_keyfile": str(self.keyfile or self.certfile),
            "ssl_keyfile_password": password.get_secret_value() if password else None,
        }
