#!/usr/bin/env bash
# Shared helpers for the project's set-up scripts (sourced, not run).
# Everything here is idempotent: a second call finds the work done and returns quickly.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ONMETAL_VENV:-$ROOT/.venv}"
export ROOT VENV

# Debian packages the controller needs for both set-up commands: debootstrap for the rig's images, udev for
# udevadm rule checks, busybox-static for tiny test images, ShellCheck (ansible-test sanity runs it on these scripts).
BASE_PACKAGES=(debootstrap udev busybox-static ca-certificates make tar shellcheck)
# Debian's engine, installed only when no engine answers and none is installed: docker.io conflicts with Docker's
# docker-ce/containerd.io, so installing it next to them would remove the operator's engine.
ENGINE_PACKAGES=(docker.io iptables)
# Packages that already provide an engine (docker-ce from Docker's repository, moby-engine, Debian's docker.io).
ENGINE_PROVIDERS=(docker-ce moby-engine docker.io)
# QEMU for the KVM scenario's VM: only `make test` (scripts/test.sh) runs it, not the lab.
VM_PACKAGES=(qemu-system-x86 qemu-utils)
# Test-only too: a real nginx for tests/roles/test_gateway_nginx_hook.py (the test starts and stops its own on
# loopback; Debian's package does not start nginx on a machine without an init).
TEST_PACKAGES=(nginx)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

phase_start() { PHASE_NAME="$1"; PHASE_T0=$(date +%s); log "$1"; }
phase_end() {
  local t=$(( $(date +%s) - PHASE_T0 ))
  printf '%-40s %5ss\n' "$PHASE_NAME" "$t" >>"${ONMETAL_TIMINGS:-/dev/null}"
  log "$PHASE_NAME: ${t}s"
}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "This needs root (it installs Debian packages and runs a Docker engine); run it with sudo." >&2
    exit 1
  fi
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# How this machine gets its engine: "running" (an engine answers: use it), "installed <what>" (installed but not
# running: ensure_engine starts it) or "none" (install Debian's docker.io).
engine_state() {
  local p
  if docker info >/dev/null 2>&1; then
    echo running
    return 0
  fi
  for p in "${ENGINE_PROVIDERS[@]}"; do
    if pkg_installed "$p"; then
      echo "installed $p"
      return 0
    fi
  done
  if command -v dockerd >/dev/null 2>&1; then
    echo "installed $(command -v dockerd)"
    return 0
  fi
  echo none
}

# The packages to install, one a line: the base set, the engine only when engine_state is "none", QEMU only with
# the argument "vm" (the KVM scenario). Packages already installed are left out.
host_packages() {
  local want=("${BASE_PACKAGES[@]}") p
  [ "${1:-}" = vm ] && want+=("${VM_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
  [ "$(engine_state)" = none ] && want+=("${ENGINE_PACKAGES[@]}")
  for p in "${want[@]}"; do
    pkg_installed "$p" || echo "$p"
  done
}

ensure_host_packages() {
  local missing=() state
  state=$(engine_state)
  case "$state" in
    running) log "a Docker engine answers: using it (no engine packages installed)" ;;
    installed*) log "engine ${state#installed } is installed but not running: starting it, not installing docker.io" ;;
  esac
  mapfile -t missing < <(host_packages "${1:-}")
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "creating Python venv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
  echo "$want" >"$stamp"
}

# The Docker engine on the controller: systemd when it is PID 1, else dockerd started directly.
ensure_engine() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(ps -o comm= -p 1 2>/dev/null)" = systemd ]; then
    systemctl start docker
  else
    log "starting dockerd (no systemd): log in /var/log/onmetal-dockerd.log"
    nohup dockerd >/var/log/onmetal-dockerd.log 2>&1 &
    echo $! >/run/onmetal-dockerd.pid
  fi

  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "The Docker engine did not answer within 60 s; see /var/log/onmetal-dockerd.log" >&2
  exit 1
}

# ansible-test downloads get-pip.py from a host outside the registries; it reads a saved copy first.
ensure_ansible_test_pip() {
  local version
  version=$("$VENV/bin/python" - <<'PY' 2>/dev/null || true
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
import sys
print(get_venv_packages(NativePythonConfig(version="%d.%d" % sys.version_info[:2], path=sys.executable))["pip"])
PY
)
  [ -n "$version" ] || version=24.2
  local dest="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
  if ! cmp -s "$ROOT/scripts/ansible_test_get_pip.py" "$dest" 2>/dev/null; then
    mkdir -p "$(dirname "$dest")"
    cp "$ROOT/scripts/ansible_test_get_pip.py" "$dest"
  fi
}

activate() {
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  export ANSIBLE_COLLECTIONS_PATH="$ROOT/.cache/collections${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"
  mkdir -p "$ROOT/.cache/collections/ansible_collections/onmetal"
  [ -L "$ROOT/.cache/collections/ansible_collections/onmetal/faas" ] ||
    ln -s "$ROOT" "$ROOT/.cache/collections/ansible_collections/onmetal/faas"
}

# bootstrap [vm]: "vm" adds QEMU for the KVM scenario (scripts/test.sh); the lab does without it.
bootstrap() {
  need_root
  ensure_host_packages "${1:-}"
  ensure_venv
  ensure_engine
  activate
  ensure_ansible_test_pip
}
