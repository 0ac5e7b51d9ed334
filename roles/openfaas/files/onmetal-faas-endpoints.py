# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""onmetal-faas-endpoints: keep OpenFaaS function services in dnsrr endpoint mode on a swarm without IPVS.

Installed by the onmetal.faas.openfaas role on every manager when the kernel has no IPVS and the gateway calls
functions directly (openfaas_call_path: direct). faas-swarm 0.9.0 creates every function as a VIP service
(handlers/deploy.go builds the ServiceSpec without an EndpointSpec; its ``dnsrr`` setting only changes how its own
proxy resolves ``tasks.<name>``), and a service VIP needs IPVS: the gateway's call to ``http://<name>:8080`` then
fails with "no route to host". This program watches the local engine's service events and switches every
service labelled ``com.openfaas.function`` to ``EndpointSpec.Mode: dnsrr`` as soon as it is created (Docker's DNS
then answers the service name with the tasks' addresses). faas-swarm's update and scale handlers edit the
inspected spec in place (handlers/update.go, handlers/scale.go), so the mode stays once set.

Standard library only. Every manager runs it; two managers converting the same service race harmlessly (the
engine refuses the older version, the loser re-reads and finds dnsrr). One line per action on stdout (journal).
"""

import http.client
import json
import socket
import sys
import time
import urllib.parse

FUNCTION_LABEL = "com.openfaas.function"


def needs_dnsrr(service):
    """The reason to switch ``service`` (an inspected service) to dnsrr, or None to leave it alone."""
    spec = service.get("Spec") or {}
    if FUNCTION_LABEL not in (spec.get("Labels") or {}):
        return None
    endpoint = spec.get("EndpointSpec") or {}
    if (endpoint.get("Mode") or "vip") == "dnsrr":
        return None
    if endpoint.get("Ports"):
        return None  # a published port needs a VIP; a function published by hand is its owner's choice
    name = spec.get("Name", service.get("ID"))
    return f"function service {name} is in {endpoint.get('Mode') or 'vip'} mode"


def dnsrr_spec(spec):
    """A copy of ``spec`` with the dnsrr endpoint mode, and updates that start a new task before stopping the old.

    Swarm replaces the function's first task once more after an endpoint change (seen on Engine 20.10: at the next
    scale, slot 1 is replaced). faas-swarm creates functions with the engine's default stop-first order, so that
    replacement left the function with no task for a moment: Docker's DNS then answered the name with no address
    and the gateway's calls failed with 502. start-first (what faas-swarm's own update sets, handlers/update.go:88)
    keeps the old task serving until the new one runs.
    """
    new = dict(spec)
    new["EndpointSpec"] = {"Mode": "dnsrr"}
    new["UpdateConfig"] = dict(spec.get("UpdateConfig") or {}, Order="start-first")
    return new


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=None):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Engine:
    """The few Engine API calls this program makes, over the local socket."""

    def __init__(self, path="/var/run/docker.sock", timeout=30):
        self.path = path
        self.timeout = timeout

    def call(self, method, url, body=None):
        conn = UnixHTTPConnection(self.path, self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, url, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, json.loads(payload) if payload[:1] in (b"{", b"[") else payload.decode(errors="replace")
        finally:
            conn.close()

    def events(self):
        """Subscribe to service events now; returns an iterator of event dicts that ends when the stream does.

        The subscription starts before the caller's sweep, so no service created in between is missed."""
        query = urllib.parse.urlencode({"filters": json.dumps({"type": ["service"]})})
        conn = UnixHTTPConnection(self.path, None)
        conn.request("GET", "/events?" + query)
        resp = conn.getresponse()
        if resp.status != 200:
            conn.close()
            raise OSError(f"GET /events answered {resp.status}")

        def stream():
            try:
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    if line.strip():
                        yield json.loads(line)
            finally:
                conn.close()

        return stream()


def convert(engine, service_id, log, attempts=5):
    """Switch one service to dnsrr when it needs it; True when it did."""
    for _attempt in range(attempts):
        status, service = engine.call("GET", f"/services/{urllib.parse.quote(service_id)}")
        if status == 404:
            return False
        if status != 200:
            raise OSError(f"inspecting service {service_id} answered {status}: {service}")
        reason = needs_dnsrr(service)
        if reason is None:
            return False
        version = service["Version"]["Index"]
        url = "/services/{}/update?version={}".format(service["ID"], version)
        status, answer = engine.call("POST", url, dnsrr_spec(service["Spec"]))
        if status == 200:
            log(f"{reason}: switched to dnsrr")
            return True
        # 500 "update out of sequence": another manager or faas-swarm updated it first; read it again.
        log(f"{reason}: update answered {status} ({answer}); retrying")
        time.sleep(0.2)
    return False


def sweep(engine, log):
    query = urllib.parse.urlencode({"filters": json.dumps({"label": [FUNCTION_LABEL]})})
    status, services = engine.call("GET", "/services?" + query)
    if status != 200:
        raise OSError(f"listing services answered {status}: {services}")
    return sum(convert(engine, s["ID"], log) for s in services)


def run(engine, log, sleep=time.sleep, forever=True):
    """Sweep, then follow service events; on any engine error wait and start again."""
    while True:
        try:
            events = engine.events()
            sweep(engine, log)
            for event in events:
                if event.get("Action") in ("create", "update"):
                    convert(engine, (event.get("Actor") or {}).get("ID", ""), log)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log(f"engine: {exc}; again in 2 s")
        if not forever:
            return
        sleep(2)


def main():
    def log(text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    log("onmetal-faas-endpoints: keeping function services in dnsrr mode")
    run(Engine(sys.argv[1] if len(sys.argv) > 1 else "/var/run/docker.sock"), log)


if __name__ == "__main__":
    main()
