#!/usr/bin/env bash
# End-to-end check of the OpenFaaS test doubles and the Debian-built images (onmetal.faas tests only), on a
# PRIVATE Docker engine so that no other engine on the machine is touched:
#   - a network namespace "onmetal-doubles-<pid>" (own loopback, ports and iptables) runs a second dockerd with
#     its own data root, exec root and socket; a single-node Swarm is initialised there;
#   - the archives written by build.sh ($1, default <repo>/.cache/images) are loaded and verify/stack.yml is
#     deployed as stack "func" (every service dnsrr, gateway port 8080 in host mode);
#   - through the gateway on 127.0.0.1:8080 (inside the namespace): /healthz, basic auth on /system/functions,
#     function create (faas-swarm creates a real Swarm service), sync and async calls (callback received),
#     scale to zero and back on the first call, update, delete; from a container on func_functions:
#     Prometheus scrapes the gateway, Alertmanager is ready, the registry answers GET /v2/ with 200.
# Everything is removed at exit (stack, swarm, dockerd by PID, data root, namespace). Needs root, ip, curl.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGES=$(cd "${1:-$ROOT/.cache/images}" && pwd)
NS="onmetal-doubles-$$"
STATE=$(mktemp -d /var/tmp/onmetal-doubles-verify.XXXXXX)
SOCK="$STATE/docker.sock"
export DOCKER_HOST="unix://$SOCK"
PASSWORD="verify-$$-$RANDOM"
G=http://127.0.0.1:8080
DOCKERD_PID=""
FAILURES=0

in_ns() { ip netns exec "$NS" "$@"; }
ok() { echo "verify: ok   $*"; }
bad() { echo "verify: FAIL $*" >&2; FAILURES=$((FAILURES + 1)); }
# expect WHAT EXPECTED ACTUAL
expect() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }

cleanup() {
  set +e
  if [ -n "$DOCKERD_PID" ]; then
    docker stack rm func >/dev/null 2>&1
    docker rm -f cb >/dev/null 2>&1
    docker swarm leave --force >/dev/null 2>&1
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
  fi
  ip netns delete "$NS" 2>/dev/null
  # Mounts of the private engine live in its own mount namespace, which ended with it.
  rm -rf "$STATE"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "verify: needs root (network namespace, dockerd)" >&2; exit 1; }
[ -s "$IMAGES/manifest.json" ] || { echo "verify: $IMAGES/manifest.json missing: run tests/doubles/build.sh" >&2; exit 1; }

ip netns add "$NS"
in_ns ip link set lo up
# `ip netns exec` gives the command a private mount namespace with a fresh /sys: re-attach the host's cgroup
# hierarchies there (v1 controllers or the v2 unified tree) before starting dockerd.
cat >"$STATE/start-dockerd.sh" <<EOF
#!/bin/sh
set -e
if [ "\$(awk '\$2=="/sys/fs/cgroup"{print \$3}' /proc/1/mounts)" = cgroup2 ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  awk '\$3=="cgroup"{print \$2, \$4}' /proc/1/mounts | while read -r dir opts; do
    ctl=\$(echo "\$opts" | tr , '\n' | grep -v -E '^(rw|ro|relatime|nosuid|nodev|noexec)\$' | paste -sd, -)
    mkdir -p "\$dir"; mount -t cgroup -o "\$ctl" cgroup "\$dir"
  done
fi
exec dockerd --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$STATE/dockerd.pid" \
  -H "unix://$SOCK" --bridge none
EOF
chmod +x "$STATE/start-dockerd.sh"
ip netns exec "$NS" "$STATE/start-dockerd.sh" >"$STATE/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || { tail -20 "$STATE/dockerd.log" >&2; echo "verify: private dockerd did not start" >&2; exit 1; }
docker swarm init --advertise-addr 127.0.0.1 >/dev/null
T0=$SECONDS
for f in "$IMAGES"/*.tar; do docker load -q -i "$f" >/dev/null; done
echo "verify: private engine up, swarm initialised, archives loaded in $((SECONDS - T0))s"

printf admin | docker secret create basic-auth-user - >/dev/null
printf '%s' "$PASSWORD" | docker secret create basic-auth-password - >/dev/null
(cd "$HERE/verify" && GATEWAY_PORT=8080 DOCKER_SOCKET="$SOCK" docker stack deploy -c stack.yml func >/dev/null)
for _ in $(seq 60); do
  [ "$(in_ns curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" $G/system/functions)" = 200 ] && break
  sleep 1
done
docker service ls --format '{{.Name}} {{.Replicas}}' | sed 's/^/verify:      /'

expect "GET /healthz" 200 "$(in_ns curl -s -o /dev/null -w '%{http_code}' $G/healthz)"
expect "GET /system/functions without auth" 401 "$(in_ns curl -s -o /dev/null -w '%{http_code}' $G/system/functions)"
expect "GET /system/functions with auth" 200 \
  "$(in_ns curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" $G/system/functions)"
spec='{"service":"upper","image":"onmetal-test/fn-echo:current","labels":{"com.openfaas.scale.min":"1"},
       "envVars":{"MODE":"v1"},"limits":{"memory":"64m"}}'
expect "POST /system/functions" 202 \
  "$(in_ns curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" -d "$spec" $G/system/functions)"
for _ in $(seq 60); do
  in_ns curl -s -u "admin:$PASSWORD" $G/system/function/upper | grep -q '"availableReplicas": 1' && break
  sleep 0.5
done
# faas-swarm 0.9.0 sets no endpoint spec (handlers/deploy.go:146-174): Swarm's default, VIP
expect "function service is a VIP service with the function label" "vip true" \
  "$(docker service inspect upper --format '{{.Endpoint.Spec.Mode}} {{index .Spec.Labels "function"}}')"
expect "sync call" "HELLO SWARM" "$(in_ns curl -s -d 'hello swarm' $G/function/upper)"

docker run -d --name cb --network func_functions --entrypoint python3 onmetal-test/openfaas-gateway:current -u -c '
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        print("CALLBACK", self.headers.get("X-Function-Status"), self.headers.get("X-Call-Id"), body, flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("", 8080), H).serve_forever()' >/dev/null
sleep 1
call_id=$(in_ns curl -s -D- -o /dev/null -d 'hello async' -H 'X-Callback-Url: http://cb:8080/done' \
  $G/async-function/upper | tr -d '\r' | awk -F': ' 'tolower($1)=="x-call-id"{print $2}')
got=""
for _ in $(seq 40); do got=$(docker logs cb 2>/dev/null | grep "^CALLBACK" | grep -F "$call_id" || true); [ -n "$got" ] && break; sleep 0.25; done
expect "async call: callback with status and output" "CALLBACK 200 $call_id HELLO ASYNC" "$got"

in_ns curl -s -o /dev/null -u "admin:$PASSWORD" -d '{"serviceName":"upper","replicas":0}' $G/system/scale-function/upper
# Wait until the last replica's container is gone, not only its task's desired state.
for _ in $(seq 60); do
  [ -z "$(docker ps -q --filter label=com.docker.swarm.service.name=upper)" ] && break
  sleep 0.5
done
t0=$(date +%s.%N)
expect "first call after scale to zero" "WAKE" "$(in_ns curl -s -d wake $G/function/upper)"
echo "verify:      (scale from zero took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')s)"

upd='{"service":"upper","image":"onmetal-test/fn-echo:current","envVars":{"MODE":"v2"}}'
expect "PUT /system/functions" 202 \
  "$(in_ns curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" -X PUT -d "$upd" $G/system/functions)"
expect "update reached the service" '["MODE=v2"]' \
  "$(docker service inspect upper --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}')"
expect "sync call after update" "AFTER UPDATE" "$(in_ns curl -s -d 'after update' $G/function/upper)"

expect "no /metrics on 8080 (gateway main.go:275-296)" 404 "$(in_ns curl -s -o /dev/null -w '%{http_code}' $G/metrics)"
metrics=$(docker exec "$(docker ps -qf name=func_gateway | head -1)" python3 -c \
  'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8082/metrics").read().decode())')
if grep -q '^gateway_function_invocation_total{code="200",function_name="upper"}' <<<"$metrics"; then
  ok "gateway /metrics counts invocations"
else
  bad "gateway /metrics lacks gateway_function_invocation_total for upper"
fi

probe=$(docker run --rm --network func_functions --entrypoint python3 onmetal-test/openfaas-gateway:current -c '
import json, time, urllib.request as u
def get(url):
    try:
        with u.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except Exception as exc:
        return 0, str(exc)
for _ in range(30):
    status, body = get("http://prometheus:9090/api/v1/targets")
    targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
    gw = [t["health"] for t in targets if t["labels"].get("job") == "gateway"]
    if gw == ["up"]:
        break
    time.sleep(1)
print("prometheus-gateway-target", gw)
print("alertmanager-ready", get("http://alertmanager:9093/-/ready")[0])
print("registry-v2", get("http://registry:5000/v2/")[0])
')
expect "Prometheus scrapes the gateway" "prometheus-gateway-target ['up']" "$(grep prometheus-gateway <<<"$probe")"
expect "Alertmanager ready" "alertmanager-ready 200" "$(grep alertmanager-ready <<<"$probe")"
expect "registry GET /v2/" "registry-v2 200" "$(grep registry-v2 <<<"$probe")"
expect "prometheus --version" "prometheus, version 2" \
  "$(docker run --rm --entrypoint /usr/bin/prometheus onmetal-rig/prometheus:current --version 2>&1 | head -1 | cut -c1-21)"

delete='{"functionName":"upper"}'
expect "DELETE /system/functions" 202 \
  "$(in_ns curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" -X DELETE -d "$delete" $G/system/functions)"
expect "DELETE of an unknown function" 404 \
  "$(in_ns curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" -X DELETE -d "$delete" $G/system/functions)"

if [ "$FAILURES" -gt 0 ]; then
  for s in gateway faas-swarm queue-worker; do docker service logs --tail 20 "func_$s" >&2 2>&1 || true; done
  echo "verify: $FAILURES check(s) failed" >&2
  exit 1
fi
echo "verify: all checks passed in $((SECONDS - T0))s"
