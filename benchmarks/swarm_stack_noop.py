#!/usr/bin/env python
"""No-op run of onmetal.faas.swarm_stack vs community.docker.docker_stack on the same stack.

Both modules deploy the same N-service stack (under two stack names) once; then each runs the
unchanged definition ``--runs`` times.  For every no-op run we measure

* the module's task duration (ansible.posix.json callback: task start -> end), and
* the Engine API requests it made, counted by a small proxy on a unix socket between the
  clients (Docker SDK / docker CLI) and the engine.

and print medians plus the ratio docker_stack / swarm_stack.

Needs: a swarm manager engine on a unix socket (--docker-host or DOCKER_HOST), the docker CLI,
ansible-playbook with community.docker and ansible.posix, the Python modules ``docker``, ``yaml``
and ``jsondiff`` for --python (docker_stack needs jsondiff; add a directory with --pythonpath).
The test image is built from Debian's busybox-static by the integration target's script.

    sudo python3 benchmarks/swarm_stack_noop.py --docker-host unix:///run/docker.sock \
        --python /tmp/venvtest/bin/python --pythonpath /tmp/bench-pydeps
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_IMAGE = os.path.join(ROOT, "tests", "integration", "targets", "swarm_stack", "files", "build-image.sh")
REQUEST_RE = re.compile(rb"(?:^|\r\n)(GET|HEAD|POST|PUT|DELETE|PATCH) (/\S*) HTTP/1\.[01]\r\n")


class CountingProxy:
    """Forward a unix socket to the engine's socket and count HTTP requests (per path)."""

    def __init__(self, listen_path, engine_path):
        self.listen_path = listen_path
        self.engine_path = engine_path
        self.lock = threading.Lock()
        self.requests = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(listen_path)
        self.server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _addr = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine_path)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, count):
        seen = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if count:
                found = [(m.group(1).decode(), m.group(2).decode()) for m in REQUEST_RE.finditer(seen)]
                with self.lock:
                    self.requests.extend(found)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def take(self):
        time.sleep(0.3)  # let the pumps of closed connections finish
        with self.lock:
            taken, self.requests = self.requests, []
        return taken

    def close(self):
        self.server.close()


def compose(services, image):
    return {
        "version": "3.8",
        "services": {
            f"svc{i:02d}": {
                "image": image,
                "command": ["sh", "-c", "while true; do sleep 5; done"],
                "environment": {"INDEX": str(i), "ROLE": "bench"},
                "stop_grace_period": "1s",
                "deploy": {"replicas": 1, "endpoint_mode": "dnsrr", "labels": {"bench": "noop"}},
            }
            for i in range(services)
        },
    }


def playbook(task, python):
    return [
        {"hosts": "localhost", "gather_facts": False, "vars": {"ansible_python_interpreter": python}, "tasks": [task]}
    ]


def run_playbook(workdir, name, task, env, python):
    path = os.path.join(workdir, name + ".json")
    with open(path, "w") as handle:
        json.dump(playbook(task, python), handle)
    started = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", path],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{") :])
        task_out = out["plays"][0]["tasks"][0]
        result = task_out["hosts"]["localhost"]
        duration = task_out["task"]["duration"]
    except (ValueError, KeyError, IndexError):
        sys.exit(f"ansible-playbook failed for {name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if result.get("failed"):
        sys.exit(f"{name} failed: {result.get('msg')}\n{result.get('stderr', '')}")
    seconds = _iso_seconds(duration["end"]) - _iso_seconds(duration["start"])
    return result, seconds, wall


def _iso_seconds(text):
    # '2026-11-26T20:30:01.123456Z'
    clock = text.split("T", 1)[1].rstrip("Z")
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="interpreter for the modules")
    parser.add_argument("--pythonpath", default="", help="extra PYTHONPATH for the modules (e.g. with jsondiff)")
    parser.add_argument("--keep", action="store_true", help="leave the two benchmark stacks deployed")
    args = parser.parse_args()

    if not args.docker_host.startswith("unix://"):
        sys.exit("--docker-host must be a unix socket (unix:///path), the request counter is a unix socket proxy")
    engine_sock = args.docker_host[len("unix://") :]
    workdir = tempfile.mkdtemp(prefix="stack-bench-")
    proxy_sock = os.path.join(workdir, "engine.sock")
    proxy = CountingProxy(proxy_sock, engine_sock)
    proxy_host = "unix://" + proxy_sock

    env = dict(os.environ)
    env.update(
        DOCKER_HOST=proxy_host,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_COLLECTIONS_PATH=_collections_path(workdir),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    image = "stacktest/web:v1"
    subprocess.run(
        ["sh", BUILD_IMAGE, "stacktest/web", "v1"],
        env=dict(os.environ, DOCKER_HOST=args.docker_host),
        check=True,
        capture_output=True,
    )
    definition = compose(args.services, image)
    ours = {
        "onmetal.faas.swarm_stack": {
            "name": "benchours",
            "compose": definition,
            "docker_host": proxy_host,
            "endpoint_mode": "vip",
        }
    }
    theirs = {"community.docker.docker_stack": {"name": "benchcd", "compose": [definition], "docker_host": proxy_host}}

    results = {}
    try:
        for label, task in (("onmetal.faas.swarm_stack", ours), ("community.docker.docker_stack", theirs)):
            first, _s, _w = run_playbook(workdir, "deploy", task, env, args.python)
            proxy.take()
            if label.startswith("onmetal"):
                # let the first deployment settle so the no-op runs measure a converged stack
                run_playbook(workdir, "settle", task, env, args.python)
                proxy.take()
            times, calls, walls, changed = [], [], [], []
            for _run in range(args.runs):
                result, seconds, wall = run_playbook(workdir, "noop", task, env, args.python)
                reqs = proxy.take()
                times.append(seconds)
                walls.append(wall)
                calls.append(len(reqs))
                changed.append(bool(result.get("changed")))
            results[label] = {
                "task_seconds_median": statistics.median(times),
                "task_seconds": times,
                "api_calls_median": statistics.median(calls),
                "api_calls": calls,
                "playbook_wall_seconds_median": statistics.median(walls),
                "changed": changed,
                "first_deploy_changed": bool(first.get("changed")),
                "last_requests": _histogram(reqs),
            }
    finally:
        if not args.keep:
            for name in ("benchours", "benchcd"):
                subprocess.run(
                    ["docker", "stack", "rm", name],
                    env=dict(os.environ, DOCKER_HOST=args.docker_host),
                    capture_output=True,
                    check=False,
                )
        proxy.close()
        shutil.rmtree(workdir, ignore_errors=True)

    a = results["onmetal.faas.swarm_stack"]
    b = results["community.docker.docker_stack"]
    print(json.dumps(results, indent=2, sort_keys=True))
    print()
    print(f"no-op run of a {args.services}-service stack, median of {args.runs} runs")
    print(f"{'module':34} {'task s':>8} {'API calls':>10} {'changed':>8}")
    for label, r in results.items():
        print(f"{label:34} {r['task_seconds_median']:8.2f} {r['api_calls_median']:10.0f} {str(any(r['changed'])):>8}")
    print(
        f"ratio docker_stack/swarm_stack: time {b['task_seconds_median'] / a['task_seconds_median']:.1f}x, "
        f"API calls {b['api_calls_median'] / max(a['api_calls_median'], 1):.1f}x"
    )


def _histogram(requests):
    hist = {}
    for method, path in requests:
        key = method + " " + re.sub(r"^/v[\d.]+", "", path.split("?", 1)[0])
        key = re.sub(r"/(services|tasks|networks|nodes)/[0-9a-z]{12,}", r"/\1/{id}", key)
        hist[key] = hist.get(key, 0) + 1
    return dict(sorted(hist.items(), key=lambda kv: -kv[1]))


def _collections_path(workdir):
    """A collections path where ansible_collections/onmetal/faas is this checkout; the community
    collections come from the Python installation (ansible package)."""
    parts = ROOT.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "onmetal"]:
        return os.sep.join(parts[:-3])
    base = os.path.join(workdir, "collections")
    os.makedirs(os.path.join(base, "ansible_collections", "onmetal"))
    os.symlink(ROOT, os.path.join(base, "ansible_collections", "onmetal", "faas"))
    return base


if __name__ == "__main__":
    main()
