# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health probe: exit 0 when GET /_/health on the local server answers 200.

The image declares no HEALTHCHECK (see the Dockerfile); this probe is for operators who add one,
e.g. ``docker service update --health-cmd "python3 -I -S /home/app/healthcheck.py" ...``.
It uses a raw socket instead of importing urllib (a few milliseconds of CPU per run), and it
reads the whole answer until the server closes the connection: closing a socket with unread data
makes the kernel send a reset, which the server would see as a peer that broke off.
"""

import os
import socket
import sys

MAX_ANSWER = 65536


def probe(port, host="127.0.0.1", timeout=2.0):
    """(ok, reason): GET /_/health over HTTP/1.0, reading the answer to its end."""
    answer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"GET /_/health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            while len(answer) < MAX_ANSWER:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        return False, f"health check: {exc}"
    status = answer.split(b"\r\n", 1)[0].split(b" ")[1:2]
    if status == [b"200"]:
        return True, ""
    return False, f"health check: answer {answer[:80]!r}, expected HTTP status 200"


def main():
    ok, reason = probe(int(os.environ.get("port", "8080")))  # noqa: SIM112 - the OpenFaaS watchdog spells it so
    if not ok:
        sys.stderr.write(reason + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
