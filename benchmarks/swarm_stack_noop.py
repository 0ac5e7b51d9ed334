#!/usr/bin/env python
"""No-op run of onmetal.faas.swarm_stack vs community.docker.docker_stack on the same stack.

Both modules deploy the same N-service stack (under two stack names) once; then each runs the
unchanged definition ``--runs`` times.  For every no-op run we measure

* the module's task duration (ansible.posix.json callback: task start -> end), and
* the Engine API requests it made, counted by a small proxy on a unix socket between the
  clients (swarm_stack's own client, docker_stack's Docker SDK and docker CLI) and the engine.

and print medians plus the ratio docker_stack / swarm_stack.  The runs go in rounds side by side:
swarm_stack (a no-op run is answered by its action plugin's read-only probe), swarm_stack with
``no_op_probe: false`` (the module itself), docker_stack, then ``ansible.builtin.ping`` -- the floor,
what Ansible costs for any module task on this machine (fork, AnsiballZ, interpreter start,
``ansible.module_utils.basic``).
"Above the floor" (task time minus the ping median) is what the module itself adds; "process" is the
wall time of the module's Python process on the node (a sitecustomize in PYTHONPATH logs it).

Needs: a swarm manager engine on a unix socket (--docker-host or DOCKER_HOST), the docker CLI,
ansible-playbook with community.docker and ansible.posix, the Python modules ``docker``, ``yaml``
and ``jsondiff`` for --python (docker_stack needs them; swarm_stack needs none; add a directory
with jsondiff with --pythonpath).
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


PROCESS_TIMER = """# Written by benchmarks/swarm_stack_noop.py: log how long each Python process of a module ran
# (from exec, read from /proc, to exit), so the module's own cost can be told from Ansible's per-task cost.
import atexit, os, sys, time
_log = os.environ.get("BENCH_PROCESS_LOG")
# the module's interpreter runs AnsiballZ_<module>.py, or reads the wrapper from stdin with pipelining
if _log and os.path.basename(sys.argv[0] if sys.argv else "") != "ansible-playbook":
    def _done():
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        with open(_log, "a") as f:
            f.write("%.3f %s\\n" % (uptime - start_ticks / os.sysconf("SC_CLK_TCK"), os.path.basename(sys.argv[0])))
    atexit.register(_done)
"""


def process_seconds(path):
    """Sum of the logged Python process times (the module's process; docker_stack's CLI calls run inside it)."""
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        total = sum(float(line.split()[0]) for line in handle if line.strip())
    os.unlink(path)
    return total


LABEL_OURS = "onmetal.faas.swarm_stack"
LABEL_MODULE = "swarm_stack, no_op_probe=false"
LABEL_THEIRS = "community.docker.docker_stack"
LABEL_FLOOR = "ansible.builtin.ping (floor)"


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
    """python None: the interpreter comes from configuration (ansible.cfg or ANSIBLE_PYTHON_INTERPRETER)."""
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [task]}
    if python:
        play["vars"] = {"ansible_python_interpreter": python}
    return [play]


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
    parser.add_argument(
        "--interpreter-from",
        choices=("config", "env", "vars"),
        default="config",
        help="where --python is set: interpreter_python in an ansible.cfg (default), ANSIBLE_PYTHON_INTERPRETER, "
        "or the play var ansible_python_interpreter",
    )
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
    play_python = None
    if args.interpreter_from == "config":
        env["ANSIBLE_CONFIG"] = os.path.join(workdir, "ansible.cfg")
        with open(env["ANSIBLE_CONFIG"], "w") as handle:
            handle.write(f"[defaults]\ninterpreter_python = {args.python}\n")
        env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
    elif args.interpreter_from == "env":
        env["ANSIBLE_PYTHON_INTERPRETER"] = args.python
    else:
        play_python = args.python
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

    timer_dir = os.path.join(workdir, "timer")
    os.makedirs(timer_dir)
    with open(os.path.join(timer_dir, "sitecustomize.py"), "w") as handle:
        handle.write(PROCESS_TIMER)
    env["PYTHONPATH"] = timer_dir + os.pathsep + env.get("PYTHONPATH", "")
    env["BENCH_PROCESS_LOG"] = process_log = os.path.join(workdir, "process.log")

    module_only = {"onmetal.faas.swarm_stack": dict(ours["onmetal.faas.swarm_stack"], no_op_probe=False)}
    tasks = {
        LABEL_OURS: ours,
        LABEL_MODULE: module_only,
        LABEL_THEIRS: theirs,
        LABEL_FLOOR: {"ansible.builtin.ping": {}},
    }
    samples = {label: {key: [] for key in ("task", "process", "calls", "wall", "changed", "probe")} for label in tasks}
    first_changed = {}
    try:
        for label in (LABEL_OURS, LABEL_THEIRS):
            first, _s, _w = run_playbook(workdir, "deploy", tasks[label], env, play_python)
            first_changed[label] = bool(first.get("changed"))
            # a second run lets the first deployment settle, so the no-op runs measure a converged stack
            run_playbook(workdir, "settle", tasks[label], env, play_python)
            proxy.take()
            process_seconds(process_log)
        # Side by side: each round runs the three tasks one after the other, so load changes hit all three.
        for _run in range(args.runs):
            for label, task in tasks.items():
                result, seconds, wall = run_playbook(workdir, "noop", task, env, play_python)
                reqs = proxy.take()
                sample = samples[label]
                sample["task"].append(seconds)
                sample["wall"].append(wall)
                sample["process"].append(process_seconds(process_log))
                sample["calls"].append(len(reqs))
                sample["changed"].append(bool(result.get("changed")))
                sample["probe"].append(bool(result.get("no_op_probe")))
                sample["requests"] = _histogram(reqs)
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

    floor = statistics.median(samples[LABEL_FLOOR]["task"])
    results = {}
    for label, sample in samples.items():
        results[label] = {
            "task_seconds": sample["task"],
            "task_seconds_median": statistics.median(sample["task"]),
            "above_floor_seconds_median": statistics.median(sample["task"]) - floor,
            "process_seconds": sample["process"],
            "process_seconds_median": statistics.median(sample["process"]),
            "api_calls": sample["calls"],
            "api_calls_median": statistics.median(sample["calls"]),
            "playbook_wall_seconds_median": statistics.median(sample["wall"]),
            "changed": sample["changed"],
            "first_deploy_changed": first_changed.get(label),
            "last_requests": sample.get("requests"),
        }
    a, b = results[LABEL_OURS], results[LABEL_THEIRS]
    print(json.dumps(results, indent=2, sort_keys=True))
    print()
    print(
        f"no-op run of a {args.services}-service stack, {args.runs} rounds side by side, medians; "
        f"interpreter from {args.interpreter_from}; load {_load()}"
    )
    print(f"{'task':34} {'task s':>7} {'- floor':>8} {'process s':>10} {'API calls':>10} {'changed':>8}")
    for label, r in results.items():
        print(
            f"{label:34} {r['task_seconds_median']:7.3f} {r['above_floor_seconds_median']:8.3f} "
            f"{r['process_seconds_median']:10.3f} {r['api_calls_median']:10.0f} {str(any(r['changed'])):>8}"
        )
    above_a, above_b = a["above_floor_seconds_median"], b["above_floor_seconds_median"]
    print(
        "ratio docker_stack/swarm_stack: task {:.1f}x, module process {:.1f}x, API calls {:.1f}x".format(
            b["task_seconds_median"] / a["task_seconds_median"],
            b["process_seconds_median"] / a["process_seconds_median"],
            b["api_calls_median"] / max(a["api_calls_median"], 1),
        )
    )
    if above_a > 0:
        print(f"above the floor: {above_b / above_a:.1f}x")
    else:
        print("swarm_stack's task is below the floor: no module ran (the action plugin's probe answered)")
    print(
        "for comparison: docker_stack/ping {:.1f}x, what a module that does nothing at all would reach".format(
            b["task_seconds_median"] / results[LABEL_FLOOR]["task_seconds_median"]
        )
    )
    print(f"swarm_stack answered by the probe: {sum(1 for r in samples[LABEL_OURS]['probe'] if r)}/{args.runs} runs")
    m = results[LABEL_MODULE]
    print(
        "the module alone (no_op_probe=false): docker_stack/module task {:.1f}x, module process {:.1f}x".format(
            b["task_seconds_median"] / m["task_seconds_median"],
            b["process_seconds_median"] / m["process_seconds_median"],
        )
    )


def _load():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


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
