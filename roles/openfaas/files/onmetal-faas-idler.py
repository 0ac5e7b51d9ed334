# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""onmetal-faas-idler: scale idle OpenFaaS functions to zero replicas (installed by the onmetal.faas.openfaas role).

A function labelled ``com.openfaas.scale.zero: "true"`` is scaled to 0 replicas once its invocation count has not
changed for ``com.openfaas.scale.zero-duration`` (a Go duration such as ``15m``; default ``--default-duration``).
Its next call wakes it through the gateway's own ``scale_from_zero`` (openfaas_scale_from_zero).

Every swarm manager runs this program; each one watches the gateway, but only the node that is the swarm's leader
(asked through the local engine socket) scales anything, so losing a manager does not stop idling and two idlers
never race. Nothing is persisted: a restarted idler starts counting again (the safe side).

Sources of the facts used (OpenFaaS gateway 0.18.18 = openfaas/faas 11ff356c, faas-swarm 0.9.0):
- ``GET /system/functions`` lists ``name``, ``replicas`` (the service's desired replicas,
  faas-swarm handlers/reader.go:63), ``labels`` and ``invocationCount``, which the gateway fills from Prometheus:
  ``sum(gateway_function_invocation_total) by (function_name, code)`` added up per function over every gateway
  (gateway/metrics/add_metrics.go:53-105). If Prometheus does not answer, the counts are 0 (add_metrics.go:56-61):
  a drop counts as activity here, and the idle period then starts again.
- ``POST /system/scale-function/<name>`` with ``{"serviceName": ..., "replicas": n}`` (gateway main.go:225,
  plugin/external.go:127-166); faas-swarm answers 202 (handlers/replicas_updater.go:61), 500 on an engine error.

Standard library only; the pure part (durations, labels, idle tracking, the leader test) is unit-tested in
tests/unit/roles/test_openfaas_idler.py, the program as a whole against a fake gateway and a fake engine.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

ZERO_LABEL = "com.openfaas.scale.zero"
DURATION_LABEL = "com.openfaas.scale.zero-duration"

# Go's time.ParseDuration units (we accept positive durations only; a bare number has no unit, as in Go).
_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


class DurationError(ValueError):
    """A value that is not a positive Go duration."""


def parse_duration(text: str) -> float:
    """Seconds of a Go duration such as ``15m``, ``1h30m``, ``90s`` or ``1.5h``; positive only."""
    value = text.strip() if isinstance(text, str) else ""
    pos, total = 0, 0.0
    while value and pos < len(value):
        match = _PART.match(value, pos)
        if not match:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise DurationError(f"{text!r} is not a Go duration; expected a number with a unit such as 90s, 15m or 1h30m")
    if total <= 0:
        raise DurationError(f"{text!r} is not a positive duration; expected at least 1s, such as 90s or 15m")
    return total


@dataclass(frozen=True)
class Policy:
    """What a function's labels ask for: idle after ``seconds`` when ``enabled``; ``problem`` names a bad label."""

    enabled: bool
    seconds: float = 0.0
    problem: str = ""


def read_policy(name: str, labels, default_seconds: float) -> Policy:
    """The idling policy of one function from its labels; a bad value disables idling for it, with the reason."""
    labels = labels if isinstance(labels, dict) else {}
    flag = labels.get(ZERO_LABEL)
    if flag is None or str(flag).strip().lower() == "false":
        return Policy(False)
    if str(flag).strip().lower() != "true":
        return Policy(
            False,
            problem=f'function {name}: label {ZERO_LABEL}={flag!r} is neither "true" nor "false"; not idling it '
            f'(set {ZERO_LABEL}: "true" to scale it to zero when idle)',
        )
    raw = labels.get(DURATION_LABEL)
    if raw is None or str(raw).strip() == "":
        return Policy(True, default_seconds)
    try:
        return Policy(True, parse_duration(str(raw)))
    except DurationError as exc:
        return Policy(False, problem=f"function {name}: label {DURATION_LABEL}: {exc}; not idling it")


@dataclass(frozen=True)
class Action:
    """Scale ``name`` to zero: no call for ``idle_seconds`` (its zero-duration is ``period``)."""

    name: str
    idle_seconds: float
    period: float


@dataclass
class _Seen:
    count: float
    since: float  # monotonic time of the last sign of activity (or of the first sight)


@dataclass
class Tracker:
    """Remembers each labelled function's invocation count and since when it has not moved (in memory only)."""

    default_seconds: float
    seen: dict = field(default_factory=dict)
    warned: set = field(default_factory=set)

    def observe(self, functions, now: float) -> tuple[list[Action], list[str]]:
        """The functions idle long enough to scale to zero, and one log line per newly seen bad label."""
        actions, names, problems = [], set(), set()
        for item in functions if isinstance(functions, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            name = item["name"]
            names.add(name)
            policy = read_policy(name, item.get("labels"), self.default_seconds)
            if policy.problem:
                problems.add(policy.problem)
            if not policy.enabled:
                self.seen.pop(name, None)  # labelled later: it starts counting from then
                continue
            count, replicas = _number(item.get("invocationCount")), _number(item.get("replicas"))
            state = self.seen.get(name)
            # New, called (count up), counters reset by a gateway or Prometheus restart (count down), at zero
            # replicas (a woken function gets a full period even before its first call shows in Prometheus), or
            # without numbers to judge by: never idle.
            if state is None or count is None or count != state.count or replicas is None or replicas <= 0:
                self.seen[name] = _Seen(count, now)
                continue
            idle = now - state.since
            if idle >= policy.seconds:
                actions.append(Action(name, idle, policy.seconds))
        for gone in set(self.seen) - names:
            del self.seen[gone]
        notes = sorted(problems - self.warned)  # each bad label once, again only after it was fixed and broken
        self.warned = problems
        return actions, notes

    def scaled(self, name: str, now: float) -> None:
        """After a scale to zero: the function counts as fresh when it comes back."""
        if name in self.seen:
            self.seen[name].since = now


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def is_leader(info, node) -> tuple[bool, str]:
    """Whether the engine's node leads the swarm, from ``GET /info`` and ``GET /nodes/<NodeID>``; else why not."""
    swarm = (info or {}).get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        return False, f"this node is not in an active swarm (LocalNodeState={swarm.get('LocalNodeState')!r})"
    if not swarm.get("ControlAvailable"):
        return False, "this node is a swarm worker, not a manager"
    if not isinstance(node, dict):
        return False, "the swarm's node list did not answer (no leader: quorum lost?)"
    if ((node.get("ManagerStatus") or {}).get("Leader")) is True:
        return True, "this manager leads the swarm"
    return False, "another manager leads the swarm"


# -- I/O -------------------------------------------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Engine:
    """The local Docker engine's API on its unix socket (read-only: /info and /nodes/<id>)."""

    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.socket_path, self.timeout = socket_path, timeout

    def get(self, path: str):
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else None
        finally:
            conn.close()

    def leader(self) -> tuple[bool, str]:
        try:
            status, info = self.get("/info")
            if status != 200:
                return False, f"engine answered {status} to GET /info"
            node_id = ((info or {}).get("Swarm") or {}).get("NodeID") or ""
            node = None
            if node_id and ((info.get("Swarm") or {}).get("ControlAvailable")):
                status, answer = self.get("/nodes/" + urllib.parse.quote(node_id))
                node = answer if status == 200 else None
            return is_leader(info, node)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return False, f"engine socket {self.socket_path} did not answer: {exc}"


class GatewayError(Exception):
    """The gateway did not answer as expected."""


class Gateway:
    """The OpenFaaS gateway's management API with basic auth."""

    def __init__(self, url: str, username: str, password: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.timeout = timeout

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", self.auth)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (an http:// URL we build)
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayError(f"{method} {self.url}{path}: {exc}") from exc

    def functions(self):
        status, data = self._call("GET", "/system/functions")
        if status != 200:
            raise GatewayError(f"GET {self.url}/system/functions answered {status}: {_short(data)}")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise GatewayError(f"GET {self.url}/system/functions: not JSON ({exc})") from exc

    def scale_to_zero(self, name: str) -> int:
        path = "/system/scale-function/" + urllib.parse.quote(name, safe="")
        status, data = self._call("POST", path, {"serviceName": name, "replicas": 0})
        if status not in (200, 202):  # the gateway's own check (plugin/external.go:159)
            raise GatewayError(f"POST {self.url}{path} answered {status}: {_short(data)}")
        return status


def _short(data) -> str:
    return (data or b"").decode("utf-8", "replace").strip()[:200]


class Idler:
    """One run: the tracker, the gateway, the engine, the clock and the log, stepped once per poll."""

    def __init__(self, tracker, gateway, engine, clock=time.monotonic, log=print):
        self.tracker, self.gateway, self.engine, self.clock, self.log = tracker, gateway, engine, clock, log
        self._last_state = None  # the last leader/error line logged, to log changes only

    def _state(self, line: str) -> None:
        if line != self._last_state:
            self._last_state = line
            self.log(line)

    def step(self) -> list[str]:
        """Poll once; scale what is idle when this node leads. Returns the names scaled to zero."""
        leading, why = self.engine.leader()
        try:
            functions = self.gateway.functions()
        except GatewayError as exc:
            self._state(f"gateway unreachable, nothing scaled: {exc}")
            return []
        actions, notes = self.tracker.observe(functions, self.clock())
        for note in notes:
            self.log(note)
        self._state(("acting: " if leading else "watching only: ") + why)
        if not leading:
            return []
        done = []
        for action in actions:
            try:
                status = self.gateway.scale_to_zero(action.name)
            except GatewayError as exc:
                self.log(f"scale-to-zero failed function={action.name} idle_seconds={action.idle_seconds:.0f}: {exc}")
                continue
            self.tracker.scaled(action.name, self.clock())
            done.append(action.name)
            self.log(
                f"scale-to-zero function={action.name} idle_seconds={action.idle_seconds:.0f} "
                f"zero_duration_seconds={action.period:g} status={status}"
            )
        return done


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="onmetal-faas-idler", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="gateway URL")
    parser.add_argument("--credentials", help='JSON file {"username": ..., "password": ...} (mode 0600)')
    parser.add_argument("--docker-socket", default="/var/run/docker.sock", help="the local engine's socket")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between polls")
    parser.add_argument("--default-duration", default="15m", help="idle period of functions without the label")
    parser.add_argument("--validate", action="store_true", help="check --interval and --default-duration, exit")
    return parser.parse_args(argv)


def settings_problems(interval: float, default_duration: str) -> list[str]:
    """What is wrong with the program's settings (empty when they are usable)."""
    problems = []
    if not interval > 0:
        problems.append(f"openfaas_idler_interval {interval:g}: expected a number of seconds above 0, such as 30")
    try:
        parse_duration(default_duration)
    except DurationError as exc:
        problems.append(f"openfaas_idler_default_duration: {exc}")
    return problems


def _log(line: str) -> None:
    print(line, flush=True)  # one line to the journal per event


def main(argv=None, sleep=time.sleep) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    problems = settings_problems(args.interval, args.default_duration)
    if problems:
        print("onmetal-faas-idler: " + "; ".join(problems), file=sys.stderr)
        return 2
    if args.validate:
        return 0
    try:
        with open(args.credentials, encoding="utf-8") as handle:
            creds = json.load(handle)
        username, password = creds["username"], creds["password"]
    except (OSError, TypeError, ValueError, KeyError) as exc:
        print(
            f"onmetal-faas-idler: cannot read the gateway credentials from {args.credentials}: {exc!r}; expected a "
            'JSON file {"username": ..., "password": ...} (the openfaas role writes it)',
            file=sys.stderr,
        )
        return 2
    idler = Idler(
        Tracker(parse_duration(args.default_duration)),
        Gateway(args.gateway, username, password),
        Engine(args.docker_socket),
        log=_log,
    )
    _log(
        f"onmetal-faas-idler polling {args.gateway} every {args.interval:g}s, default zero-duration "
        f"{args.default_duration}; functions labelled {ZERO_LABEL}=true"
    )
    while True:
        idler.step()
        sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
