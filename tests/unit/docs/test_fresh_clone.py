"""The README's real-host commands work in a fresh clone, as written, with only the venv active.

A copy of the checkout's files (what `git clone` gives: tracked and not-ignored files, symlinks kept) is made in a
temporary directory outside any ``ansible_collections`` tree, with no ANSIBLE_COLLECTIONS_PATH, no ANSIBLE_CONFIG
and an empty HOME (so no collection installed in ~/.ansible is found). Then ``cp -r inventories/cluster.example
inventories/my-cluster`` and ``ansible-playbook -i inventories/my-cluster playbooks/site.yml`` must resolve every
role (``onmetal.faas.*`` by FQCN), from the clone and from another directory. ``--syntax-check`` and
``--list-tasks`` load every play and role without contacting a host.
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
ROLES = ["disk_tuning", "docker_engine", "swarm", "openfaas", "gateway_nginx", "functions"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    dest = tmp_path_factory.mktemp("fresh") / "faas-clone"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    pack = subprocess.run(["tar", "--null", "-T", "-", "-c"], cwd=ROOT, input=files, capture_output=True, check=True)
    dest.mkdir()
    subprocess.run(["tar", "-x"], cwd=dest, input=pack.stdout, check=True)
    shutil.copytree(dest / "inventories" / "cluster.example", dest / "inventories" / "my-cluster")
    return dest


def _env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(home), PATH=BIN + os.pathsep + env.get("PATH", ""), ANSIBLE_NOCOLOR="true")
    return env


@pytest.mark.parametrize("mode", ["--syntax-check", "--list-tasks"])
def test_readme_commands_find_the_roles_in_the_clone(clone, tmp_path, mode):
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "inventories/my-cluster", "playbooks/site.yml", mode],
        cwd=clone,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "was not found" not in out
    if mode == "--list-tasks":
        for role in ROLES:
            assert f"onmetal.faas.{role} :" in out, role


def test_playbooks_find_the_collection_from_another_directory(clone, tmp_path):
    proc = subprocess.run(
        [
            os.path.join(BIN, "ansible-playbook"),
            "-i",
            str(clone / "inventories" / "my-cluster"),
            str(clone / "playbooks" / "site.yml"),
            "--list-tasks",
        ],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # no ansible.cfg applies here: the roles come from the clone's playbooks/collections alone
    for role in ROLES:
        assert f"onmetal.faas.{role} :" in out, role


def test_the_link_is_left_out_of_the_built_collection():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        assert "  - playbooks/collections\n" in handle.read()
    assert os.readlink(os.path.join(ROOT, "playbooks", "collections", "ansible_collections", "onmetal", "faas")) == (
        "../../../.."
    )
