# SPDX-License-Identifier: GPL-3.0-or-later
# Enqueues N async calls through the gateway for the async-queue checks (molecule verify_queue.yml, the queue drills):
#   python3 enqueue.py GATEWAY_URL FUNCTION N CALLBACK_BASE [PREFIX [QUERY]]
# each POST /async-function/FUNCTION carries X-Callback-Url: CALLBACK_BASE/<PREFIX><i>. Prints one JSON line:
# {"sent": N, "statuses": {code: count}, "accepted": [ids answered 202], "sent_at": {id: unix time},
#  "ms": {"p50", "p90", "max"}} (time to the gateway's answer). Every call is counted; a failed call is a status.
# ONMETAL_ENQUEUE_INSECURE=1: an https:// GATEWAY_URL (nginx with its self-signed certificate) is not verified.
"""Enqueue N async calls, counting every answer."""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request


def main():
    gateway, function, count, callback = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    prefix = sys.argv[5] if len(sys.argv) > 5 else "m"
    query = ("?" + sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] else ""
    statuses, accepted, sent_at, millis = {}, [], {}, []
    context = None
    if os.environ.get("ONMETAL_ENQUEUE_INSECURE") == "1":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    for i in range(count):
        key = f"{prefix}{i}"
        req = urllib.request.Request(
            f"{gateway}/async-function/{function}{query}",
            data=f"job {key}".encode(),
            method="POST",
            headers={"X-Callback-Url": f"{callback}/{key}", "Content-Type": "text/plain"},
        )
        sent_at[key] = time.time()
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=35, context=context) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except OSError as err:
            status = f"error: {err}"
        millis.append((time.monotonic() - t0) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 202:
            accepted.append(key)
    millis.sort()

    def pick(q):
        return round(millis[min(len(millis) - 1, int(q * len(millis)))], 2) if millis else None

    print(
        json.dumps(
            {
                "sent": count,
                "statuses": statuses,
                "accepted": accepted,
                "sent_at": sent_at,
                "ms": {"p50": pick(0.5), "p90": pick(0.9), "max": pick(1.0)},
            }
        )
    )


if __name__ == "__main__":
    main()
