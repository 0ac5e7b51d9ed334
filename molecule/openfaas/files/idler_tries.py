"""Scale to zero and wake, on a manager: TRIES times, wait (bounded) until the idler has scaled FUNCTION to 0
replicas, then call it once through the gateway and record the status, the answer and the seconds the call took.

Usage: python3 idler_tries.py GATEWAY FUNCTION TRIES WAIT_LIMIT, with {"username", "password"} as JSON on stdin.
Prints one JSON document: {"tries": [{"status", "seconds", "body", "waited"}], "error": "..."}. The seconds are
reported, not judged here (the test asserts the statuses and the answers).
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request


def replicas(gateway, name, auth):
    req = urllib.request.Request(f"{gateway}/system/function/{name}", headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(json.loads(resp.read()).get("replicas") or 0)


def call(gateway, name, body):
    req = urllib.request.Request(f"{gateway}/function/{name}", data=body, method="POST")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    except OSError as exc:
        status, data = 0, str(exc).encode()
    return status, time.monotonic() - start, data.decode("utf-8", "replace")


def main():
    gateway, name, tries, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    creds = json.load(sys.stdin)
    auth = "Basic " + base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    result = {"tries": []}
    for attempt in range(1, tries + 1):
        start = time.monotonic()
        while replicas(gateway, name, auth) != 0:
            if time.monotonic() - start > limit:
                result["error"] = f"try {attempt}: {name} was not scaled to zero within {limit:g} s"
                print(json.dumps(result))
                return
            time.sleep(1)
        waited = time.monotonic() - start
        status, seconds, body = call(gateway, name, f"wake {attempt}".encode())
        result["tries"].append({"status": status, "seconds": round(seconds, 3), "body": body, "waited": round(waited)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
