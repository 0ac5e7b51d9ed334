# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The request/response contracts of the onmetal.faas python3-http template (standard library only).

A function is a directory with ``handler.py`` that defines ``handle``, in one of two styles; the
template tells them apart by the number of positional parameters (see :func:`contract_of`):

* ``handle(event, context)``: upstream OpenFaaS's python3-http contract (openfaas/python-flask-template,
  ``template/python3-http/index.py``), so handlers written for it run unchanged; see :class:`Event`,
  :class:`Context` and :func:`event_response`.
* ``handle(req)``: this project's own contract, below.

``req`` is a :class:`Request`; ``handle(req)`` returns one of

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
import os
from urllib.parse import parse_qs, unquote


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


# --- upstream's python3-http contract: handle(event, context) -------------------------------------
#
# Upstream (openfaas/python-flask-template, template/python3-http/index.py at 686f769) runs Flask:
# ``Event`` carries ``request.get_data()``, ``request.headers``, ``request.method``, ``request.args``
# and ``request.path`` (lines 10-16); ``Context`` has ``hostname`` from $HOSTNAME, default
# "localhost" (lines 18-20); a dict result gives ``statusCode`` (default 200, lines 22-26), ``body``
# ("" when missing, a dict through ``jsonify``, anything else through ``str()``, lines 28-34) and
# ``headers`` (a dict or a list of pairs, lines 36-46); ``None`` is an empty 200 (lines 48-50); any
# other value goes to Flask as it is (line 59): a str or bytes is a 200 ``text/html; charset=utf-8``,
# a list is JSON, a tuple is ``(body, status)``, ``(body, status, headers)`` or ``(body, headers)``.


class QueryArgs(dict):
    """The query string like Flask's ``request.args``: ``args["a"]``/``args.get("a")`` give the first
    value, ``args.getlist("a")`` all of them."""

    def __init__(self, query_string):
        self._lists = parse_qs(query_string, keep_blank_values=True)
        super().__init__((key, values[0]) for key, values in self._lists.items())

    def getlist(self, key):
        return list(self._lists.get(key, []))

    def to_dict(self, flat=True):
        return dict(self) if flat else {key: list(values) for key, values in self._lists.items()}


class Event:
    """What upstream's ``handle(event, context)`` receives: ``body`` (bytes), ``headers``
    (case-insensitive), ``method``, ``query`` (:class:`QueryArgs`) and ``path`` (percent-decoded,
    like Flask's ``request.path``)."""

    __slots__ = ("body", "headers", "method", "query", "path")

    def __init__(self, req):
        self.body = req.body
        self.headers = req.headers
        self.method = req.method
        self.query = QueryArgs(req.query_string)
        self.path = unquote(req.path)


class Context:
    """Upstream's context object: only ``hostname`` ($HOSTNAME, default "localhost")."""

    __slots__ = ("hostname",)

    def __init__(self, environ=None):
        self.hostname = (os.environ if environ is None else environ).get("HOSTNAME", "localhost")


FLASK_TEXT = "text/html; charset=utf-8"  # Flask's default mimetype for str and bytes responses


def _jsonify(value):
    # Flask's default JSON provider (flask/json/provider.py, DefaultJSONProvider): ASCII-escaped,
    # keys sorted, compact separators outside debug mode, a trailing newline.
    return (json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def _header_items(headers):
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    try:
        return {str(key): str(value) for key, value in items}
    except (TypeError, ValueError):
        raise TypeError(f"handle() returned headers of type {type(headers).__name__}; expected a dict") from None


def _flask_body(body):
    """(bytes, content type) for a value Flask would turn into a response body."""
    if body is None:
        return b"", FLASK_TEXT
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), FLASK_TEXT
    if isinstance(body, str):
        return body.encode("utf-8"), FLASK_TEXT
    if isinstance(body, (dict, list)):
        return _jsonify(body), "application/json"
    raise TypeError(
        f"handle(event, context) returned a value of type {type(body).__name__}; return a dict with "
        "statusCode/body/headers, a str, bytes, a list, None or a (body, status[, headers]) tuple"
    )


def event_response(result):
    """``(status, headers, body_bytes)`` for what an upstream-style ``handle(event, context)`` returned."""
    status, headers = 200, {}
    if isinstance(result, dict):
        status = int(result.get("statusCode", 200))
        body = result.get("body", "")
        if isinstance(body, dict):
            data, ctype = _jsonify(body), "application/json"
        elif isinstance(body, (bytes, bytearray, memoryview)):
            # Upstream passes str(body) ("b'...'"); raw bytes are what such a handler means.
            data, ctype = bytes(body), FLASK_TEXT
        else:
            data, ctype = str(body).encode("utf-8"), FLASK_TEXT
        headers = _header_items(result.get("headers"))
    elif isinstance(result, tuple) and 2 <= len(result) <= 3:
        data, ctype = _flask_body(result[0])
        if len(result) == 3 or not isinstance(result[1], (dict, list)):
            status = int(result[1])
            headers = _header_items(result[2]) if len(result) == 3 else {}
        else:
            headers = _header_items(result[1])
    else:
        data, ctype = _flask_body(result)
    if not any(key.lower() == "content-type" for key in headers):
        headers["Content-Type"] = ctype
    return status, headers, data


def _positional(handle):
    """(positional parameter count, required count, takes *args) of a callable."""
    func = getattr(handle, "__func__", handle)
    code = getattr(func, "__code__", None)
    if code is None:  # a callable object or a builtin: ask inspect (not imported on the usual path)
        import inspect  # noqa: PLC0415 - about 10 ms of import, only for unusual handlers

        try:
            params = list(inspect.signature(handle).parameters.values())
        except (TypeError, ValueError):
            return 1, 1, False
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        positional = [p for p in params if p.kind in kinds]
        required = [p for p in positional if p.default is inspect.Parameter.empty]
        return len(positional), len(required), any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
    bound = 1 if func is not handle else 0  # a bound method: self is already given
    count = code.co_argcount - bound
    return count, count - len(func.__defaults__ or ()), bool(code.co_flags & 0x04)  # CO_VARARGS


def contract_of(handle):
    """The contract of ``handle``: "event" for ``handle(event, context)`` (two positional
    parameters), "req" for ``handle(req)``; TypeError for any other signature."""
    positional, required, varargs = _positional(handle)
    if required <= 2 and positional >= 2:
        return "event"
    if required <= 1 and (positional == 1 or varargs):
        return "req"
    raise TypeError(
        f"handle() takes {positional} positional parameters ({required} required); define handle(req) "
        "(this template's contract) or handle(event, context) (upstream OpenFaaS python3-http)"
    )


class Function:
    """A loaded ``handle`` with its contract: :meth:`call` runs it, :meth:`response` converts its result."""

    def __init__(self, handle, environ=None):
        self.handle = handle
        self.contract = contract_of(handle)
        self.context = Context(environ)

    def call(self, req):
        if self.contract == "event":
            return self.handle(Event(req), self.context)
        return self.handle(req)

    def response(self, result):
        return event_response(result) if self.contract == "event" else to_response(result)
