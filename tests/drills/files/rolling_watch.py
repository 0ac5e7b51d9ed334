"""Load and leader watch for the rolling_restart drill (tests/drills/tasks/rolling_restart.yml).

Runs until STOP_FILE exists (or --max-seconds passes), then writes one JSON summary to --out:
- load: --workers threads POST a small real PNG to https://<node>/function/resize through nginx, round-robin over
  every --node address, each request on a fresh connection, and count every answer that is not a 200 image/jpeg
  (HTTP errors, resets, timeouts) as lost, with its time, node and reason. Bounded: --max-requests in total.
- leader: one `docker exec <manager>` per --manager container runs `docker node ls` every --poll seconds inside it
  and streams the answers. Each answer is evidence of one of three kinds: "leader" (the manager listed a Leader),
  "no leader" (its engine answered and listed none, or said the swarm has no leader) and "down" (its engine did not
  answer: the node being restarted, which says nothing about the swarm). The swarm is without a leader from a "no
  leader" answer until the next "leader" answer from any manager. Reported: the seconds without a leader, the
  longest such stretch, the polls per manager, and the resolution: the longest time between two "leader" answers
  (a loss of the leader shorter than that could pass between two polls; --poll and three managers keep it near
  the poll interval).
Traffic goes only to the lab's node containers.
"""

import argparse
import json
import os
import ssl
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zlib


def png():
    """A small real PNG (64x40, made with zlib, no Pillow) to keep the load cheap."""
    width, height = 64, 40
    raw = b"".join(b"\x00" + bytes((x * 4) % 256 for x in range(width * 3)) for _row in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def answer_kind(code, out):
    """What one `docker node ls --format {{.ManagerStatus}}` answer (exit code, output) says of the swarm's leader."""
    if code == "0":
        return "leader" if "Leader" in out else "no_leader"
    if "leader" in out.lower() or "quorum" in out.lower():  # "The swarm does not have a leader", "...quorum..."
        return "no_leader"
    return "down"  # "Cannot connect to the Docker daemon", a timeout: this manager's engine is not answering


def leader_timeline(evidence, elapsed):
    """Seconds without a leader (from a "no_leader" answer to the next "leader" answer), the longest such stretch,
    and the longest time without any "leader" answer (the watch's resolution), from (t, manager, kind) answers."""
    without = longest = 0.0
    since = None
    confirmations = [0.0]
    for when, _manager, kind in sorted(evidence):
        if kind == "no_leader" and since is None:
            since = when
        elif kind == "leader":
            confirmations.append(when)
            if since is not None:
                without += when - since
                longest = max(longest, when - since)
                since = None
    if since is not None:
        without += elapsed - since
        longest = max(longest, elapsed - since)
    confirmations.append(elapsed)
    return {
        "leader_answers": len(confirmations) - 2,
        "seconds_without_leader": round(without, 2),
        "longest_without_leader": round(longest, 2),
        "longest_unconfirmed": round(max(b - a for a, b in zip(confirmations, confirmations[1:])), 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", action="append", default=[], help="nginx addresses to load; none: watch only")
    ap.add_argument("--manager", action="append", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--max-seconds", type=float, default=900)
    ap.add_argument("--max-requests", type=int, default=40000)
    args = ap.parse_args()

    body = png()
    context = ssl._create_unverified_context()  # the lab's self-signed certificates
    t0 = time.monotonic()
    lock = threading.Lock()
    state = {"sent": 0, "ok": 0, "lost": [], "per_node": {n: [0, 0] for n in args.node}}
    evidence = []  # (seconds since start, manager, "leader" | "no_leader" | "down")
    polls = {m: {"ok": 0, "no_leader": 0, "error": 0} for m in args.manager}

    def running():
        return not os.path.exists(args.stop_file) and time.monotonic() - t0 < args.max_seconds

    def load(index):
        i = index
        while running():
            with lock:
                if state["sent"] >= args.max_requests:
                    return
                state["sent"] += 1
            node = args.node[i % len(args.node)]
            i += 1
            url = f"https://{node}/function/resize"
            req = urllib.request.Request(url, data=body, headers={"Content-Type": "image/png"}, method="POST")
            reason = None
            try:
                with urllib.request.urlopen(req, timeout=30, context=context) as resp:
                    data = resp.read()
                    if resp.status != 200 or not data.startswith(b"\xff\xd8"):
                        reason = f"{resp.status} {resp.headers.get('Content-Type', '')}"
            except urllib.error.HTTPError as err:
                reason = f"{err.code} {err.read()[:80]!r}"
            except OSError as err:
                reason = f"{type(err).__name__}: {err}"[:160]
            with lock:
                state["per_node"][node][0] += 1
                if reason is None:
                    state["ok"] += 1
                else:
                    state["per_node"][node][1] += 1
                    state["lost"].append({"t": round(time.monotonic() - t0, 2), "node": node, "reason": reason})

    def watch(manager):
        # One long-lived `docker exec` per manager runs the poll loop inside the node: a fresh exec per poll cost
        # more than the poll interval on the busy 2-core machine and left ticks without any answer.
        # Bounded inside too: the loop outlives a killed `docker exec` client, so it ends by itself at --max-seconds.
        def loop():
            left = max(1, int(args.max_seconds - (time.monotonic() - t0)) + 1)
            return (
                f"end=$(($(date +%s) + {left})); while [ $(date +%s) -lt $end ]; do "
                f"out=$(timeout 10 docker node ls --format '{{{{.ManagerStatus}}}}' 2>&1); "
                f'echo "$? $out" | tr "\\n" " "; echo; sleep {args.poll}; done'
            )

        while running():
            proc = subprocess.Popen(
                ["docker", "exec", manager, "sh", "-c", loop()],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                for line in proc.stdout:
                    kind = answer_kind(*line.strip().partition(" ")[::2])
                    with lock:
                        polls[manager][{"leader": "ok", "no_leader": "no_leader", "down": "error"}[kind]] += 1
                        evidence.append((time.monotonic() - t0, manager, kind))
                    if not running():
                        break
            finally:
                proc.kill()
                proc.wait()
            time.sleep(args.poll)

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(args.workers if args.node else 0)]
    threads += [threading.Thread(target=watch, args=(m,), daemon=True) for m in args.manager]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - t0
    leader = leader_timeline(evidence, elapsed)
    summary = {
        "seconds": round(elapsed, 1),
        "requests": state["sent"],
        "ok": state["ok"],
        "lost": len(state["lost"]),
        "lost_detail": state["lost"][:50],
        "per_node": state["per_node"],
        "rps": round(state["sent"] / elapsed, 1) if elapsed else 0,
        "poll_interval": args.poll,
        **leader,
        "polls": polls,
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "lost_detail"}))


if __name__ == "__main__":
    main()
