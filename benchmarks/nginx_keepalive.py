"""Benchmark the gateway_nginx role's upstream keepalive on a rig node (loopback traffic only).

Starts one node container of the test rig (``tests/rig/nodes.sh``: systemd as PID 1, Debian bookworm), installs
the test double of the OpenFaaS gateway (``tests/doubles/nginx_upstream``) and Debian's ``wrk`` on it, and applies
``onmetal.faas.gateway_nginx`` to it with Ansible (TLS off, everything else the role's defaults). Then, inside the
node, on 127.0.0.1 only, ``wrk`` measures the same request against:

* ``direct``: the upstream itself, no nginx;
* ``tuned``: through the role's nginx with its defaults (HTTP/1.1 upstream keepalive, ``keepalive 64``);
* ``ka16``: the same with the design's starting point, ``gateway_nginx_upstream_keepalive: 16``;
* ``no-keepalive``: through the role's nginx applied with ``gateway_nginx_upstream_keepalive: 0`` (nginx's
  defaults: HTTP/1.0 to the upstream, a new TCP connection per request);

for two upstreams: ``static`` (a second nginx on 127.0.0.1:8090 answering a fixed body: isolates the proxy's own
cost) and ``python`` (the gateway double on 127.0.0.1:8080: a slow application server, like a real gateway), at
concurrency 1, 16 and 64. Each measurement is bounded by ``--duration`` seconds (default 4; 24 runs, about 3
minutes in all with the set-up). Prints requests per second and p50/p99 latency, the p50 nginx adds over direct and
the tuned/no-keepalive throughput ratio, and checks the issue's targets (<= 0.5 ms added p50 at concurrency 1;
>= 1.3x the no-keepalive requests per second at concurrency 64).

Usage (root, from the repository, venv active): ``python3 benchmarks/nginx_keepalive.py [--duration S]
[--upstreams static,python] [--keep] [--json FILE]``. The node is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "onmetal-bench-ng"
NODE = f"{PREFIX}-1"
SUBNET = "172.29.61.0/24"
CONCURRENCY = (1, 16, 64)
NGINX_PORT = 80
UPSTREAM_PORTS = {"static": 8090, "python": 8080}
PATH = "/function/bench"
# The design's starting point (`keepalive 16`), measured next to the role's default.
DESIGN_KEEPALIVE = 16
PATHS = ("direct", "tuned", "ka16", "no-keepalive")

STATIC_UPSTREAM_CONF = """\
# A static echo upstream for the nginx benchmark (onmetal.faas benchmarks/nginx_keepalive.py).
worker_processes 1;
pid /run/onmetal-bench-static.pid;
error_log /var/log/onmetal-bench-static.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:8090;
        location / { return 200 "ok\\n"; }
    }
}
"""

PREPARE_PLAY = """\
- name: Prepare the benchmark node
  hosts: all
  gather_facts: false
  tasks:
    - name: Install and start the test double of the OpenFaaS gateway
      ansible.builtin.include_tasks: {root}/tests/doubles/nginx_upstream/install.yml
      vars:
        gateway_double_src: {root}/tests/doubles/nginx_upstream/gateway_double.py

    - name: Install wrk
      ansible.builtin.apt:
        name: [wrk]
        update_cache: true
        cache_valid_time: 86400
        install_recommends: false
"""

ROLE_PLAY = """\
- name: Apply the gateway_nginx role
  hosts: all
  gather_facts: false
  roles:
    - role: onmetal.faas.gateway_nginx
"""


def run(cmd, check=True, **kwargs):
    kwargs.setdefault("text", True)
    return subprocess.run(cmd, check=check, **kwargs)


def node_exec(*args, check=True):
    return run(["docker", "exec", NODE, *args], capture_output=True, check=check).stdout


def ansible_playbook(workdir, play_text, extra_vars):
    inv = os.path.join(workdir, "inventory.yml")
    with open(inv, "w") as f:
        f.write(
            textwrap.dedent(f"""\
            all:
              hosts:
                {NODE}:
                  ansible_connection: community.docker.docker
                  ansible_python_interpreter: /usr/bin/python3
            """)
        )
    play = os.path.join(workdir, "play.yml")
    with open(play, "w") as f:
        f.write(play_text.format(root=ROOT))
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    collections = os.path.join(ROOT, ".cache", "collections")
    env["ANSIBLE_COLLECTIONS_PATH"] = collections + os.pathsep + env.get("ANSIBLE_COLLECTIONS_PATH", "")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inv, play]
    cmd += ["-e", json.dumps(extra_vars)]
    proc = run(cmd, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit(f"ansible-playbook failed ({proc.returncode})")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(text):
    """Requests per second, p50 and p99 (ms) and error counts from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M)}
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    return {"rps": rps, "p50": pct[50], "p99": pct[99], "errors": errors}


def wrk(port, concurrency, duration):
    threads = min(concurrency, 2)
    out = node_exec(
        "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "5s", "--latency",
        f"http://127.0.0.1:{port}{PATH}",
    )  # fmt: skip
    return parse_wrk(out)


def role_vars(upstream, keepalive):
    """The role's variables for a run; keepalive None keeps the role's default."""
    extra = {
        "gateway_nginx_tls_enabled": False,
        "gateway_nginx_http_port": NGINX_PORT,
        "gateway_nginx_upstreams": [f"127.0.0.1:{UPSTREAM_PORTS[upstream]}"],
    }
    if keepalive is not None:
        extra["gateway_nginx_upstream_keepalive"] = keepalive
    return extra


def measure(workdir, upstreams, duration):
    results = {}
    for upstream in upstreams:
        port = UPSTREAM_PORTS[upstream]
        ansible_playbook(workdir, ROLE_PLAY, role_vars(upstream, DESIGN_KEEPALIVE))
        for c in CONCURRENCY:
            results[(upstream, "direct", c)] = wrk(port, c, duration)
            results[(upstream, "ka16", c)] = wrk(NGINX_PORT, c, duration)
        ansible_playbook(workdir, ROLE_PLAY, role_vars(upstream, None))
        for c in CONCURRENCY:
            results[(upstream, "tuned", c)] = wrk(NGINX_PORT, c, duration)
        ansible_playbook(workdir, ROLE_PLAY, role_vars(upstream, 0))
        for c in CONCURRENCY:
            results[(upstream, "no-keepalive", c)] = wrk(NGINX_PORT, c, duration)
        print(f"measured upstream {upstream}", file=sys.stderr)
    return results


def report(results, upstreams):
    lines = [
        f"{'upstream':<8} {'path':<13} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'p50 +ms vs direct':>18} {'req/s vs no-ka':>15}"
    ]
    verdicts = []
    for upstream in upstreams:
        for path in PATHS:
            for c in CONCURRENCY:
                r = results[(upstream, path, c)]
                direct = results[(upstream, "direct", c)]
                noka = results[(upstream, "no-keepalive", c)]
                added = "" if path == "direct" else f"{r['p50'] - direct['p50']:+.3f}"
                ratio = f"{r['rps'] / noka['rps']:.2f}x" if path in ("tuned", "ka16") else ""
                lines.append(
                    f"{upstream:<8} {path:<13} {c:>4} {r['rps']:>9.0f} {r['p50']:>8.3f} {r['p99']:>8.3f}"
                    f" {r['errors']:>6} {added:>18} {ratio:>15}"
                )
        added1 = results[(upstream, "tuned", 1)]["p50"] - results[(upstream, "direct", 1)]["p50"]
        ratio64 = results[(upstream, "tuned", 64)]["rps"] / results[(upstream, "no-keepalive", 64)]["rps"]
        verdicts.append(
            f"{upstream}: tuned adds {added1:.3f} ms p50 at c=1 (target <= 0.5: "
            f"{'met' if added1 <= 0.5 else 'MISSED'}); tuned/no-keepalive req/s at c=64 {ratio64:.2f}x "
            f"(target >= 1.3: {'met' if ratio64 >= 1.3 else 'MISSED'})"
        )
    return "\n".join(lines + [""] + verdicts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement (1-30)")
    parser.add_argument("--upstreams", default="static,python", help="comma-separated: static, python")
    parser.add_argument("--keep", action="store_true", help="keep the node container afterwards")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if not 1 <= args.duration <= 30:
        parser.error("--duration must be 1..30 seconds")
    upstreams = [u for u in args.upstreams.split(",") if u]
    if not set(upstreams) <= set(UPSTREAM_PORTS):
        parser.error(f"--upstreams: choose from {', '.join(UPSTREAM_PORTS)}")

    nodes = os.path.join(ROOT, "tests", "rig", "nodes.sh")
    run(["bash", os.path.join(ROOT, "tests", "rig", "build-images.sh")], capture_output=True)
    run(["bash", nodes, "up", PREFIX, "1", SUBNET])
    try:
        with tempfile.TemporaryDirectory() as workdir:
            ansible_playbook(workdir, PREPARE_PLAY, {})
            ansible_playbook(workdir, ROLE_PLAY, role_vars("static", 16))
            node_exec("sh", "-c", f"cat > /etc/onmetal-bench-static.conf <<'EOF'\n{STATIC_UPSTREAM_CONF}EOF")
            node_exec("sh", "-c", "pkill -F /run/onmetal-bench-static.pid 2>/dev/null; true")
            node_exec("nginx", "-c", "/etc/onmetal-bench-static.conf")
            nproc = node_exec("nproc").strip()
            # nginx -v writes to stderr.
            nginx_version = run(["docker", "exec", NODE, "nginx", "-v"], capture_output=True).stderr.strip()
            results = measure(workdir, upstreams, args.duration)
    finally:
        if not args.keep:
            run(["bash", nodes, "down", PREFIX], check=False)

    print(f"\n{nginx_version} on {NODE} ({nproc} CPUs visible), wrk {args.duration} s per row, loopback")
    print(report(results, upstreams))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [{"upstream": u, "path": p, "concurrency": c, **r} for (u, p, c), r in results.items()], f, indent=2
            )


if __name__ == "__main__":
    main()
