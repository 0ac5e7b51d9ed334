# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker HEALTHCHECK: exit 0 when GET /_/health on the local server answers 200.

Runs as ``python3 -I -S healthcheck.py`` every few seconds, so it uses a raw socket instead of
importing urllib (keeps each check at a few milliseconds of CPU).
"""

import os
import socket
import sys


def main():
    port = int(os.environ.get("port", "8080"))  # noqa: SIM112 - the OpenFaaS watchdog spells it so
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET /_/health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError as exc:
        sys.stderr.write(f"health check: {exc}\n")
        return 1
    return 0 if status_line.split(b" ")[1:2] == [b"200"] else 1


if __name__ == "__main__":
    sys.exit(main())
