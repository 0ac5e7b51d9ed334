#!/usr/bin/env bash
# Node containers that act as small KVM hosts: systemd as PID 1, their own dockerd on a volume.
#   nodes.sh up PREFIX COUNT SUBNET   start PREFIX-1..COUNT on the bridge network PREFIX (idempotent)
#   nodes.sh down PREFIX              remove the nodes, their engine volumes and the network
#   nodes.sh ls PREFIX                list the nodes and their addresses
# No --privileged on these machines: every capability except SYS_RESOURCE, seccomp/apparmor unconfined,
# the host's cgroup tree bound read-write (see docs/testbed.md).
set -euo pipefail
IMAGE="${ONMETAL_NODE_IMAGE:-onmetal-rig/node:current}"

up() {
  local prefix="$1" count="$2" subnet="$3" i name
  docker network inspect "$prefix" >/dev/null 2>&1 ||
    docker network create --subnet "$subnet" --label io.onmetal.faas.rig="$prefix" "$prefix" >/dev/null
  for i in $(seq 1 "$count"); do
    name="$prefix-$i"
    if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
      continue
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --hostname "$name" --network "$prefix" \
      --label io.onmetal.faas.rig="$prefix" \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --security-opt systempaths=unconfined \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$name-docker:/var/lib/docker" \
      --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
      "$IMAGE" >/dev/null
  done
  for i in $(seq 1 "$count"); do
    name="$prefix-$i"
    for _ in $(seq 1 30); do
      case "$(docker exec "$name" systemctl is-system-running 2>/dev/null)" in
        running|degraded) break ;;
      esac
      sleep 1
    done
  done
}

down() {
  local prefix="$1" ids
  ids=$(docker ps -aq --filter "label=io.onmetal.faas.rig=$prefix")
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
  fi
  docker volume ls -q | grep -E "^$prefix-[0-9]+-docker$" | xargs -r docker volume rm >/dev/null
  docker network rm "$prefix" >/dev/null 2>&1 || true
}

ls_nodes() {
  docker ps --filter "label=io.onmetal.faas.rig=$1" \
    --format '{{.Names}}\t{{.Status}}' | sort
}

case "${1:-}" in
  up) up "$2" "$3" "$4" ;;
  down) down "$2" ;;
  ls) ls_nodes "$2" ;;
  *) echo "usage: $0 up PREFIX COUNT SUBNET | down PREFIX | ls PREFIX" >&2; exit 2 ;;
esac
