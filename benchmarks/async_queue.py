"""Measure the async path on a running OpenFaaS swarm of node containers (the lab or the openfaas Molecule scenario).

From one manager node (``--node``), on the node's loopback gateway only:

* ``latency``: ``--calls`` async calls (each with its own ``X-Callback-Url``) while the queue-worker runs: the time to
  the gateway's 202 (p50/p90/max) and the time from sending a call to its callback (p50/p90/max). The callback
  counter runs in a container on the functions network; every clock is the host's (containers share its kernel).
* ``disk``: with the queue-worker scaled to 0, ``--queued`` calls are enqueued and the growth of the NATS file store
  (the ``func_nats-store`` volume on the node that holds it, ``du -sb``) is read, then the worker drains the queue
  (drain time). With the test double this is the double's own journal format, not nats-streaming-server's
  msgs.N.dat/idx files; the double's ``bytes`` figure is upstream's accounting (payload + record overhead).

Every call and callback is counted; failed calls are reported by status. Prints one JSON document (``--label`` names
the run, e.g. ``file`` or ``memory``). Usage (root, venv active, a converged swarm):
``python3 benchmarks/async_queue.py --node onmetal-f1 --creds FILE [--label file] [--calls 100] [--queued 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from loadkit import percentile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(ROOT, "molecule", "openfaas", "files")
COUNTER = "onmetal-qbench"
FUNCTION = "queue-bench"


def sh(*argv, stdin=None, check=True):
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, timeout=600)
    if check and done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def on(node, *argv, **kw):
    return sh("docker", "exec", "-i", node, *argv, **kw)


def counts(node):
    probe = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9000/').read().decode())"
    return json.loads(on(node, "docker", "exec", COUNTER, "python3", "-c", probe))


def function_call(node, creds, action, image=""):
    code = (
        "import base64, json, sys, urllib.request, urllib.error\n"
        "r = json.load(sys.stdin)\n"
        "a = base64.b64encode(f\"{r['u']}:{r['p']}\".encode()).decode()\n"
        "b = {'service': r['fn'], 'image': r['image'], 'labels': {'com.openfaas.scale.min': '1'}} "
        "if r['action'] == 'deploy' else {'functionName': r['fn']}\n"
        "q = urllib.request.Request('http://127.0.0.1:8080/system/functions', data=json.dumps(b).encode(), "
        "method='POST' if r['action'] == 'deploy' else 'DELETE', headers={'Authorization': 'Basic ' + a})\n"
        "try:\n    print(urllib.request.urlopen(q, timeout=30).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )
    request = {"action": action, "fn": FUNCTION, "image": image, "u": creds["username"], "p": creds["password"]}
    return on(node, "python3", "-c", code, stdin=json.dumps(request))


def enqueue(node, count, prefix):
    out = on(
        node,
        "python3",
        "/tmp/onmetal-enqueue.py",
        "http://127.0.0.1:8080",
        FUNCTION,
        str(count),
        f"http://{COUNTER}:9000/cb",
        prefix,
    )
    return json.loads(out)


def wait_for(node, wanted, bound):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        report = counts(node)
        if report["distinct"] >= wanted:
            return report
        time.sleep(0.5)
    return counts(node)


def pct(values, q):
    value = percentile(values, q)
    return None if value is None else round(value, 2)


def store_bytes(node):
    """du -sb of the NATS volume on the node that runs the NATS task (None with the memory store)."""
    where = on(
        node, "docker", "service", "ps", "func_nats", "--filter", "desired-state=running", "--format", "{{.Node}}"
    )
    if not where:
        return None, None
    path = "/var/lib/docker/volumes/func_nats-store/_data"
    size = sh("docker", "exec", where, "du", "-sb", path, check=False)
    return where, int(size.split()[0]) if size else None


def double_stats(nats_node):
    """The double's channel stats (its upstream-style byte accounting), read inside the NATS container."""
    cid = on(nats_node, "docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=func_nats")
    url = "http://127.0.0.1:4222/channels/faas-request"
    probe = f"import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"
    out = on(nats_node, "docker", "exec", cid, "python3", "-c", probe, check=False)
    try:
        return json.loads(out)
    except ValueError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--node", required=True)
    parser.add_argument("--creds", required=True)
    parser.add_argument("--manifest", default=os.path.join(ROOT, ".cache", "images", "manifest.json"))
    parser.add_argument("--label", default="run")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--queued", type=int, default=1000)
    args = parser.parse_args()
    import yaml  # the venv's PyYAML; the credentials file is YAML

    with open(args.creds, encoding="utf-8") as handle:
        creds = yaml.safe_load(handle)
    with open(args.manifest, encoding="utf-8") as handle:
        manifest = json.load(handle)
    node = args.node
    for name in ("enqueue.py", "callback_counter.py"):
        sh("docker", "cp", os.path.join(FILES, name), f"{node}:/tmp/onmetal-{name}")
    image = on(
        node, "docker", "service", "inspect", "func_gateway", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
    )
    workers = on(
        node, "docker", "service", "inspect", "func_queue-worker", "--format", "{{.Spec.Mode.Replicated.Replicas}}"
    )
    on(node, "docker", "rm", "-f", COUNTER, check=False)
    on(node, "docker", "run", "-d", "--rm", "--name", COUNTER, "--network", "func_functions", "-v",
       "/tmp/onmetal-callback_counter.py:/counter.py:ro", "--entrypoint", "python3", image, "/counter.py")  # fmt: skip
    result = {"label": args.label, "node": node}
    try:
        assert function_call(node, creds, "deploy", manifest["fn-echo"]["image"]) in ("202", "400")
        for _poll in range(60):
            if enqueue(node, 1, "warm-")["statuses"] == {"202": 1}:
                break
            time.sleep(1)
        wait_for(node, 1, 60)
        sent = enqueue(node, args.calls, "lat-")
        report = wait_for(node, args.calls + 1, 120)
        delays = [(report["first"][k] - t) * 1000 for k, t in sent["sent_at"].items() if k in report["first"]]
        result["latency"] = {
            "calls": args.calls,
            "statuses": sent["statuses"],
            "accepted_ms": sent["ms"],
            "callbacks": len(delays),
            "queue_to_callback_ms": {"p50": pct(delays, 50), "p90": pct(delays, 90), "max": pct(delays, 100)},
            "mean_ms": round(statistics.mean(delays), 2) if delays else None,
        }
        on(node, "docker", "service", "scale", "--detach=false", "func_queue-worker=0")
        nats_node, before = store_bytes(node)
        queued = enqueue(node, args.queued, "disk-")
        after = store_bytes(node)[1]
        stats = double_stats(nats_node) if nats_node else None
        t0 = time.monotonic()
        on(node, "docker", "service", "scale", "--detach=false", f"func_queue-worker={workers}")
        drained = wait_for(node, args.calls + 1 + args.queued, 300)
        result["disk"] = {
            "queued": args.queued,
            "statuses": queued["statuses"],
            "store_bytes_before": before,
            "store_bytes_after": after,
            "bytes_per_1000": round((after - before) * 1000 / args.queued) if before is not None else None,
            "double_accounting_bytes_per_1000": round(stats["bytes"] * 1000 / stats["stored"]) if stats else None,
            "drained": drained["distinct"] - args.calls - 1,
            "drain_seconds": round(time.monotonic() - t0, 1),
            "duplicates": drained["duplicates"],
        }
    finally:
        on(node, "docker", "service", "scale", "--detach=false", f"func_queue-worker={workers}", check=False)
        on(node, "docker", "rm", "-f", COUNTER, check=False)
        function_call(node, creds, "delete")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
