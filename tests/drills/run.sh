#!/usr/bin/env bash
# Fault drills on the lab (docs/fault-drills.md): make sure the lab runs (scripts/lab.sh when it does not), add
# onmetal-lab-4 as a swarm worker (tests/drills/inventory.yml), converge, run tests/drills/drills.yml and print
# a table drill -> result -> measured time. Leaves the lab converged (with the worker). Exits non-zero when a
# drill failed.
#   tests/drills/run.sh                     every drill
#   DRILLS=kill_task,security tests/drills/run.sh   some of them (manager_down, provider_down, kill_task,
#                                           worker_restart, rolling_restart, quorum_lost, queue_node_down,
#                                           queue_worker_kill, queue_nats_down, queue_full, converge, security)
#   tests/drills/run.sh -e kill_bound=3     further arguments go to ansible-playbook (bounds, see drills.yml)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$ROOT"
PREFIX=onmetal-lab
SUBNET="${ONMETAL_LAB_SUBNET:-172.29.50.0/24}"
INVENTORY=(-i inventories/lab -i tests/drills/inventory.yml)
OUT="$ROOT/.cache/drills"
mkdir -p "$OUT"
started=$(date +%s)

need_root
ensure_engine
running=0
for n in 1 2 3; do
  state=$(docker inspect -f '{{.State.Running}}' "$PREFIX-$n" 2>/dev/null || echo missing)
  case "$state" in
    true) running=$((running + 1)) ;;
    false) docker start "$PREFIX-$n" >/dev/null; running=$((running + 1)) ;;
  esac
done
if [ "$running" -lt 3 ]; then
  log "the lab is not complete: creating it (scripts/lab.sh)"
  bash scripts/lab.sh
fi
activate

if [ "$(docker inspect -f '{{.State.Running}}' "$PREFIX-4" 2>/dev/null || true)" = false ]; then
  docker start "$PREFIX-4" >/dev/null
fi
log "adding the worker $PREFIX-4 and converging"
tests/rig/nodes.sh up "$PREFIX" 4 "$SUBNET"
t0=$(date +%s)
ansible-playbook "${INVENTORY[@]}" playbooks/site.yml >"$OUT/site-worker.log" 2>&1 ||
  { tail -40 "$OUT/site-worker.log" >&2; echo "converging the lab with the worker failed (log: $OUT/site-worker.log)" >&2; exit 1; }
converge_s=$(($(date +%s) - t0))

log "running the drills"
rc=0
ansible-playbook "${INVENTORY[@]}" tests/drills/drills.yml "$@" | tee "$OUT/drills.log" || rc=$?

log "results"
python3 - "$OUT/results.jsonl" "$converge_s" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"{'drill':<16} {'result':<6} {'took':>7}  measured")
print(f"{'setup':<16} {'ok':<6} {sys.argv[2] + 's':>7}  lab with worker converged")
for r in rows:
    print(f"{r['drill']:<16} {r['result']:<6} {str(r['seconds']) + 's':>7}  {r['measured']}")
    if r['result'] != 'PASS' or r['detail']:
        print(f"{'':<32}{r['detail']}")
PY
echo "total: $(($(date +%s) - started))s; logs in $OUT"
exit "$rc"
