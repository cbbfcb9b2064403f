"""A self-signed certificate for serving the page over HTTPS on a LAN.

Phones only open the camera on a secure page, and http://<laptop-ip> is not one. The
certificate is made once with the openssl command-line tool and reused; browsers show
a warning for it the first time, which the user accepts once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path


def lan_address() -> str:
    """This machine's address on the LAN (no packet is sent: UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def ensure_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.is_file() and key.is_file():
        return cert, key
    if not shutil.which("openssl"):
        raise SystemExit("error: --https needs the openssl command to make a certificate "
                         "(apt-get install openssl), or put cert.pem and key.pem in " + str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    names = f"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:{lan_address()}"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=fer-live local",
                    "-addext", names], check=True, capture_output=True)
    key.chmod(0o600)
    return cert, key
