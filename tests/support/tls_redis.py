"""A throwaway redis-server that also speaks TLS, with a CA and certificates made by `openssl` for it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from queues.throwaway_redis import ThrowawayRedis, free_port


@dataclass(frozen=True)
class Certificates:
    """PEM files: a CA, a server certificate for 127.0.0.1 and localhost, and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # A CA that signed none of them: a client trusting only it must refuse the server.
    other_ca: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return key, cert


def _sign(directory: Path, name: str, ca_key: Path, ca_cert: Path, extensions: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext,
        cwd=directory,
    )  # fmt: skip
    return key, cert


def make_certificates(directory: Path) -> Certificates:
    """A fresh CA and the certificates signed by it, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca(directory, "test-ca")
    server_key, server_cert = _sign(
        directory,
        "127.0.0.1",
        ca_key,
        ca_cert,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    client_key, client_cert = _sign(
        directory,
        "dashboard-client",
        ca_key,
        ca_cert,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    _, other_ca = _make_ca(directory, "other-ca")
    return Certificates(ca_cert, server_cert, server_key, client_cert, client_key, other_ca)


class TlsRedis(ThrowawayRedis):
    """A throwaway Redis with a TLS port beside its plain one. The plain port (`url`) is for the test's
    own setup as the default user; the dashboard under test is given `tls_url(...)` only."""

    def __init__(self, certificates: Certificates, *, client_certificates: bool = False) -> None:
        self.tls_port = free_port()
        self.certificates = certificates
        super().__init__(
            extra_args=(
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(certificates.server_cert),
                "--tls-key-file", str(certificates.server_key),
                "--tls-ca-cert-file", str(certificates.ca),
                "--tls-auth-clients", "yes" if client_certificates else "no",
                # 127.0.0.2 as well: an address the server certificate does not name.
                "--bind", "127.0.0.1", "127.0.0.2",
            )
        )  # fmt: skip

    def tls_url(self, user: str = "", password: str = "", host: str = "127.0.0.1", query: str = "") -> str:
        """A rediss:// URL of the TLS port, with user info when given."""
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user or password else ""
        return f"rediss://{auth}{host}:{self.tls_port}/0" + (f"?{query}" if query else "")
