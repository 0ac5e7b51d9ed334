# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The request/response contract of the onmetal.faas python3-http template (standard library only).

A function is a directory with ``handler.py`` that defines ``handle(req)``.  ``req`` is a
:class:`Request`; ``handle`` returns one of

* ``bytes``/``bytearray``  -> 200, ``application/octet-stream``
* ``str``                  -> 200, ``text/plain; charset=utf-8``
* ``dict``/``list``        -> 200, ``application/json`` (serialised with :func:`json.dumps`)
* ``None``                 -> 204, no body
* ``(status, body)`` or ``(status, body, headers)`` -> that status; body converted as above;
  ``headers`` (a dict) override the default ``Content-Type``
* a :class:`Response`

Errors: an exception with an integer ``http_status`` attribute in 400..499 (such as
:class:`BadRequest`, or a handler's own class that sets ``http_status = 400``, which keeps the
handler free of imports from this template) becomes that status with ``str(exc)`` as a
``text/plain`` body.  Any other exception becomes 500 with the exception type and message; the
traceback goes to stderr (the service log).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs


class BadRequest(ValueError):
    """Raise from ``handle`` to answer 400 (or ``status``, any 4xx) with ``message`` as the body."""

    http_status = 400

    def __init__(self, message, status=400):
        super().__init__(message)
        self.http_status = int(status)


class Request:
    """One HTTP request: raw ``body`` bytes, ``method``, ``path``, ``query`` and ``headers``.

    ``headers`` is case-insensitive (``req.headers.get("content-type")``); ``query`` maps each
    name to a list of values as :func:`urllib.parse.parse_qs` does; ``query_string`` is the raw
    text after ``?``.
    """

    __slots__ = ("method", "path", "query_string", "headers", "body", "_query")

    def __init__(self, method, path, query_string, headers, body):
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self._query = None

    @property
    def query(self):
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def text(self, encoding="utf-8"):
        """The body decoded as text; raises :class:`BadRequest` when it is not valid ``encoding``."""
        try:
            return self.body.decode(encoding)
        except UnicodeDecodeError as exc:
            raise BadRequest(f"request body is not valid {encoding} text: {exc}") from None

    def json(self):
        """The body parsed as JSON; raises :class:`BadRequest` with the parser's message otherwise."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None


class Response:
    """An explicit response: ``body`` (bytes, str, dict/list or None), ``status`` and ``headers``."""

    __slots__ = ("body", "status", "headers")

    def __init__(self, body=b"", status=200, headers=None):
        self.body = body
        self.status = int(status)
        self.headers = dict(headers or {})


def _encode(body):
    """(bytes, default content type) for a handler's body value."""
    if body is None:
        return b"", None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode("utf-8"), "application/json"
    raise TypeError(
        f"handle() returned a body of type {type(body).__name__}; return bytes, str, dict, list, None, "
        "a (status, body[, headers]) tuple or a Response"
    )


def to_response(result):
    """Normalise whatever ``handle`` returned into ``(status, headers, body_bytes)``."""
    if isinstance(result, Response):
        status, body, headers = result.status, result.body, result.headers
    elif isinstance(result, tuple):
        if len(result) not in (2, 3):
            raise TypeError(f"handle() returned a tuple of {len(result)} items; expected (status, body[, headers])")
        status, body = int(result[0]), result[1]
        headers = dict(result[2] or {}) if len(result) == 3 else {}
    else:
        status, body, headers = (204 if result is None else 200), result, {}
    data, ctype = _encode(body)
    if ctype and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = ctype
    return status, headers, data


def error_status(exc):
    """The 4xx status a client error exception asks for, or None for a server error."""
    status = getattr(exc, "http_status", None)
    if isinstance(status, int) and 400 <= status <= 499:
        return status
    return None
