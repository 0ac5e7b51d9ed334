#!/usr/bin/env bash
# The built collection carries no operator files (issue 15 item 5). Copies the tracked files to a scratch
# directory, plants what an operator's clone holds (.secrets/openfaas-credentials.yml as cluster.example used to
# write it, an inventories/my-cluster/ copied from cluster.example), builds the tarball there with
# ansible-galaxy and fails when any planted file, or the planted password, is inside it; the shipped inventories
# must still be there. Usage: tests/build/no_operator_files.sh [SCRATCH_DIR]   (run by scripts/test.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH="${1:-$(mktemp -d /tmp/onmetal-planted.XXXXXX)}"
SRC="$SCRATCH/src"
rm -rf "$SRC" && mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z | tar --null -T - -c) | tar -C "$SRC" -x
mkdir -p "$SRC/.secrets" "$SRC/inventories/my-cluster"
printf 'openfaas_basic_auth_password: planted-%s\n' "$$" >"$SRC/.secrets/openfaas-credentials.yml"
cp -r "$SRC/inventories/cluster.example/." "$SRC/inventories/my-cluster/"
printf 'vault_planted: planted-%s\n' "$$" >"$SRC/inventories/my-cluster/group_vars/vault.yml"
ansible-galaxy collection build --force --output-path "$SCRATCH" "$SRC" >/dev/null
tarball=$(ls "$SCRATCH"/onmetal-faas-*.tar.gz)
python3 - "$tarball" "planted-$$" <<'PY'
import sys
import tarfile

tarball, secret = sys.argv[1], sys.argv[2]
with tarfile.open(tarball) as tar:
    names = tar.getnames()
    leaked = [n for n in names if n.startswith((".secrets", "inventories/my-cluster"))]
    carrying = [m.name for m in tar.getmembers() if m.isfile() and secret.encode() in tar.extractfile(m).read()]
missing = [n for n in ("inventories/cluster.example/hosts.yml", "inventories/lab/hosts.yml") if n not in names]
if leaked or carrying or missing:
    sys.exit(
        f"{tarball}: operator files in the artifact: {leaked}; files holding the planted secret: {carrying}; "
        f"shipped inventories missing: {missing}. Fix galaxy.yml's build_ignore "
        "(tests/unit/build/test_build_ignore.py prints the inventory patterns)."
    )
print(f"{tarball}: {len(names)} entries, no operator files (.secrets/, inventories/my-cluster/ left out)")
PY
