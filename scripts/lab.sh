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

phase_start "bootstrap (packages, venv, engine)"; bootstrap; phase_end
phase_start "rig images"; tests/rig/build-images.sh; phase_end
phase_start "lab nodes ($NODES)"; tests/rig/nodes.sh up "$PREFIX" "$NODES" "$SUBNET"; phase_end

phase_start "converge playbooks/site.yml"
ansible-playbook -i inventories/lab playbooks/site.yml
phase_end

log "summary"
docker exec "$PREFIX-1" docker node ls
echo "Nodes: $(tests/rig/nodes.sh ls "$PREFIX" | cut -f1 | tr '\n' ' ')"
echo "Enter a node: docker exec -it $PREFIX-1 bash     Remove the lab: make lab-down"
echo "Phase times:"; cat "$ONMETAL_TIMINGS"
