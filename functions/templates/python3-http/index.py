# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Entry point of the onmetal.faas python3-http template: listen first, then load, then serve.

The very first thing the process does is bind and listen on ``$port`` (default 8080), with only
``os``, ``socket`` and ``sys`` imported.  From then on the kernel completes TCP handshakes and
queues connections in the listen backlog, so a caller that connects while the server module and
the function's handler are still being imported waits for its answer instead of being refused.
Only then is :mod:`faas_server` imported (``http.server`` and friends, about 35 ms) and the
handler loaded; connections are accepted once both are ready.  A handler that cannot be loaded
still ends the process with a non-zero status and a clear message (queued connections are then
reset, which a caller sees as a failed connection, as it would without a listener).

Everything else (environment, contracts, drain on SIGTERM) is described in ``faas_server.py``.
"""

import os
import socket
import sys

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn


def listen(port, host="", backlog=LISTEN_BACKLOG):
    """A listening TCP socket on ``host:port``; SystemExit with the reason when that is impossible."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on port {port}: {exc.strerror or exc}; set port= to a free port") from None
    return sock


def main(environ=None):
    environ = os.environ if environ is None else environ
    text = environ.get("port", "8080")
    try:
        port = int(text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise SystemExit(f"port={text!r} is not a TCP port number; set port to 1..65535 (default 8080)") from None
    sock = listen(port)
    import faas_server  # noqa: PLC0415 - deliberately after listen(): see the module docstring

    return faas_server.serve(sock, environ)


if __name__ == "__main__":
    sys.exit(main())
