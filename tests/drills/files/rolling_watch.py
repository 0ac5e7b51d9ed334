"""Load and leader watch for the rolling_restart drill (tests/drills/tasks/rolling_restart.yml).

Runs until STOP_FILE exists (or --max-seconds passes), then writes one JSON summary to --out:
- load: --workers threads POST a small real PNG to https://<node>/function/resize through nginx, round-robin over
  every --node address, each request on a fresh connection, and count every answer that is not a 200 image/jpeg
  (HTTP errors, resets, timeouts) as lost, with its time, node and reason. Bounded: --max-requests in total.
- leader: one `docker exec <manager>` per --manager container runs `docker node ls` every --poll seconds inside it
  and streams the answers; a tick is "without a leader" when no manager listed a Leader during it, "unobserved" when
  no answer arrived in it at all. Reported: the seconds without a leader
  (ticks x poll interval), the longest such stretch, and the polls per manager.
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
    leader_seen = {}  # tick index -> True when some manager listed a Leader in it
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
                    tick = int((time.monotonic() - t0) / args.poll)
                    code, _sep, out = line.strip().partition(" ")
                    has_leader = code == "0" and "Leader" in out
                    with lock:
                        if has_leader:
                            polls[manager]["ok"] += 1
                            leader_seen[tick] = True
                        else:
                            polls[manager]["no_leader" if "leader" in out.lower() else "error"] += 1
                            leader_seen.setdefault(tick, False)
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
    ticks = sorted(leader_seen)
    without = [t for t in ticks if not leader_seen[t]]
    longest = run = 0
    for t in range(ticks[0], ticks[-1] + 1) if ticks else []:
        run = run + 1 if leader_seen.get(t) is False else 0
        longest = max(longest, run)
    summary = {
        "seconds": round(elapsed, 1),
        "requests": state["sent"],
        "ok": state["ok"],
        "lost": len(state["lost"]),
        "lost_detail": state["lost"][:50],
        "per_node": state["per_node"],
        "rps": round(state["sent"] / elapsed, 1) if elapsed else 0,
        "poll_interval": args.poll,
        "ticks": len(ticks),
        # Ticks in which no poll finished (neither leader nor no-leader seen): reported, never counted as led.
        "ticks_unobserved": (ticks[-1] - ticks[0] + 1 - len(ticks)) if ticks else 0,
        "seconds_without_leader": round(len(without) * args.poll, 1),
        "longest_without_leader": round(longest * args.poll, 1),
        "polls": polls,
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "lost_detail"}))


if __name__ == "__main__":
    main()
