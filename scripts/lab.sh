#!/usr/bin/env bash
# The main job: a multi-node Swarm in containers on this machine, converged with playbooks/site.yml.
#   scripts/lab.sh          set up everything it needs, create the nodes, converge site.yml, print a summary
#   scripts/lab.sh down     remove the lab's nodes, their volumes and network
# The nodes are the hosts of inventories/lab (three managers); ONMETAL_LAB_SUBNET sets their network
# (default 172.29.50.0/24).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PREFIX=onmetal-lab
NODES=3
SUBNET="${ONMETAL_LAB_SUBNET:-172.29.50.0/24}"
export ONMETAL_TIMINGS="${ONMETAL_TIMINGS:-$ROOT/.cache/lab-timings.txt}"
mkdir -p "$ROOT/.cache"; : >"$ONMETAL_TIMINGS"

if [ "${1:-}" = down ]; then
  need_root; ensure_engine
  tests/rig/nodes.sh down "$PREFIX"
  log "lab removed"
  exit 0
fi

phase_start "bootstrap (packages, venv, engine)"; bootstrap lab; phase_end
phase_start "rig images"; tests/rig/build-images.sh; phase_end
phase_start "OpenFaaS test images and bundle"; tests/doubles/build.sh "$ROOT/.cache/images"; phase_end
phase_start "lab nodes ($NODES)"; tests/rig/nodes.sh up "$PREFIX" "$NODES" "$SUBNET"; phase_end

phase_start "converge playbooks/site.yml"
ansible-playbook -i inventories/lab playbooks/site.yml
phase_end

phase_start "first call: a real image through nginx to the resize function"
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$PREFIX-1")
result=$(python3 molecule/openfaas/files/thumbcheck.py "https://$ip/function/resize" --insecure)
echo "$result"
python3 -c 'import json, sys; r = json.loads(sys.argv[1]); sys.exit(0 if r["status"] == 200 and max(r["width"], r["height"]) == 128 else 1)' "$result" ||
  { echo "the resize function did not return a 128-pixel thumbnail through nginx" >&2; exit 1; }
phase_end

phase_start "admin API from this machine, as faas-cli calls it (the node's certificate verified, no --insecure)"
cert="$ROOT/.cache/lab/gateway-$PREFIX-1.crt"
creds="$ROOT/.cache/lab/openfaas-credentials.yml"
docker exec "$PREFIX-1" cat /etc/nginx/tls/gateway.crt >"$cert"
code=$(printf 'user = "%s:%s"\n' "$(sed -n 's/^username: *//p' "$creds")" "$(sed -n 's/^password: *//p' "$creds")" |
  curl -sS -K - --cacert "$cert" -o /dev/null -w '%{http_code}' "https://$ip/system/functions" || true)
[ "$code" = 200 ] ||
  { echo "GET https://$ip/system/functions from this machine answered HTTP $code (want 200)" >&2; exit 1; }
echo "GET https://$ip/system/functions with the credentials and --cacert $cert: 200"
phase_end

log "summary"
echo "Gateway (through nginx): https://$ip/  (also on the other nodes' addresses); certificate of $PREFIX-1: $cert"
echo "faas-cli from this machine (admin calls are allowed from the lab network, the certificate names $ip):"
echo "  export OPENFAAS_URL=https://$ip SSL_CERT_FILE=$cert"
echo "  sed -n 's/^password: *//p' $creds | faas-cli login -u admin --password-stdin && faas-cli list"
echo "Credentials file: $creds (mode 0600)"
echo "Functions: resize -> https://$ip/function/resize (POST an image, get a 128-pixel JPEG back)"
docker exec "$PREFIX-1" docker node ls
echo "Nodes: $(tests/rig/nodes.sh ls "$PREFIX" | cut -f1 | tr '\n' ' ')"
echo "Enter a node: docker exec -it $PREFIX-1 bash     Remove the lab: make lab-down"
echo "Phase times:"; cat "$ONMETAL_TIMINGS"
