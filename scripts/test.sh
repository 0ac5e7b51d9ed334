#!/usr/bin/env bash
# Every test, in order: lint (yamllint, ansible-lint production, ruff), ansible-test sanity, the
# collection build and install, pytest (unit and role tests), integration targets on real block
# devices and a real swarm, then Molecule's default scenario. Sets up what it needs first.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export ONMETAL_TIMINGS="${ONMETAL_TIMINGS:-$ROOT/.cache/test-timings.txt}"
mkdir -p "$ROOT/.cache"; : >"$ONMETAL_TIMINGS"
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0 NO_COLOR=1
T0=$(date +%s)

phase_start "bootstrap (packages, venv, engine, QEMU)"; bootstrap vm; phase_end
phase_start "rig images"; tests/rig/build-images.sh; phase_end
phase_start "VM image (KVM scenario)"; tests/vm/build-image.sh; phase_end

phase_start "yamllint"; yamllint --strict .; phase_end
# ansible-lint installs a copy of this collection under .ansible/ and reuses it: drop a stale one first.
rm -rf .ansible/collections/ansible_collections/onmetal
phase_start "ansible-lint (production)"; ansible-lint --offline -q; phase_end
phase_start "ruff"; ruff check .; ruff format --check .; phase_end

# ansible-test wants the collection at .../ansible_collections/onmetal/faas: a copy of the tracked and
# untracked-but-not-ignored files, as a git work tree of its own. The clone's link to itself
# (playbooks/collections, left out of the built collection too) is not content: ansible-test refuses
# directory symlinks.
COLL_PARENT=$(mktemp -d /tmp/onmetal-ci.XXXXXX)
trap 'rm -rf "$COLL_PARENT"' EXIT
COLL="$COLL_PARENT/ansible_collections/onmetal/faas"
mkdir -p "$COLL"
git ls-files -z --cached --others --exclude-standard | grep -zv '^playbooks/collections/' |
  tar --null -T - -c | tar -C "$COLL" -x
(cd "$COLL" && git init -q && git add -A)

phase_start "ansible-test sanity"
(cd "$COLL" && ansible-test sanity --python 3.11 --requirements --color no 2>&1 | grep -v 'is ignored: it is neither')
phase_end

phase_start "collection build, install, ansible-doc"
# From the built tarball only: the checkout's own collection path is left out of this phase.
INSTALL="$COLL_PARENT/build/install"
rm -rf "$COLL_PARENT/build" && mkdir -p "$INSTALL"
ansible-galaxy collection build --force --output-path "$COLL_PARENT/build" .
ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-galaxy collection install --offline --no-deps --force \
  -p "$INSTALL" "$COLL_PARENT"/build/onmetal-faas-*.tar.gz
# No operator files in the artifact: a build with a planted .secrets/ and inventories/my-cluster/ leaves them out.
tests/build/no_operator_files.sh "$COLL_PARENT/planted"
ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-doc -t role -l onmetal.faas | tee "$COLL_PARENT/roles.txt"
for role_dir in roles/*/; do
  role=$(basename "$role_dir")
  grep -q "^onmetal.faas.$role:" "$COLL_PARENT/roles.txt" || { echo "ansible-doc does not list role $role" >&2; exit 1; }
  ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-doc -t role "onmetal.faas.$role" >/dev/null
done
ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-doc -l onmetal.faas
for plugin in $(git ls-files 'plugins/modules/*.py' | xargs -n1 basename | sed 's/\.py$//'); do
  ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-doc "onmetal.faas.$plugin" >/dev/null
done
for plugin in $(git ls-files 'plugins/filter/*.yml' | xargs -n1 basename | sed 's/\.yml$//'); do
  ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-doc -t filter "onmetal.faas.$plugin" >/dev/null
done
# The Galaxy path of the README: the collection's playbooks by name, from a directory without this ansible.cfg.
# Molecule's default scenario runs `ansible-playbook onmetal.faas.site --check` from $INSTALL on fresh nodes.
(cd "$COLL_PARENT" && ANSIBLE_COLLECTIONS_PATH="$INSTALL" ansible-playbook onmetal.faas.site \
  -i "$ROOT/inventories/cluster.example" --list-tasks | tee "$COLL_PARENT/site-tasks.txt" >/dev/null)
for role_dir in roles/*/; do
  role=$(basename "$role_dir")
  [ "$role" = async_demo ] && continue  # not a layer of site.yml (playbooks/async_demo.yml)
  grep -q "onmetal.faas.$role :" "$COLL_PARENT/site-tasks.txt" ||
    { echo "onmetal.faas.site from the tarball does not run role $role" >&2; exit 1; }
done
export ONMETAL_GALAXY_COLLECTIONS="$INSTALL"
phase_end

phase_start "pytest"
pytest -p no:cacheprovider -o console_output_style=classic tests/unit tests/roles tests/functions
phase_end

for target in tests/integration/targets/*/; do
  [ -d "$target" ] || continue
  name=$(basename "$target")
  phase_start "integration: $name"
  (cd "$COLL" && ansible-test integration --python 3.11 --local --allow-destructive --color no "$name")
  phase_end
done

for scenario in default gateway_nginx openfaas kvm; do
  phase_start "molecule $scenario"; molecule test -s "$scenario"; phase_end
done

log "all tests passed in $(( $(date +%s) - T0 ))s"
cat "$ONMETAL_TIMINGS"
