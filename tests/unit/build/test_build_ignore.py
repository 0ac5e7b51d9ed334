"""galaxy.yml's build_ignore keeps operator files out of the built collection (issue 15 item 5).

ansible-galaxy matches every build_ignore entry with fnmatch against each path relative to the collection root
(directories are skipped whole when they match; ansible/galaxy/collection/__init__.py,
_build_files_manifest_walk). fnmatch has no negation, so "every inventory but the shipped ones" is spelt as
patterns that match any top-level name under inventories/ that is not a shipped one. This test derives those
patterns from the shipped inventories (git ls-files) and holds galaxy.yml to them; scripts/test.sh builds a real
tarball with a planted .secrets/ and inventories/my-cluster/ and checks they are absent.
"""

import fnmatch
import os
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def shipped_inventories():
    out = subprocess.run(
        ["git", "ls-files", "inventories"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({path.split("/")[1] for path in out})


def not_shipped_patterns(names, base="inventories/"):
    """fnmatch patterns that match base + N (and anything below it) for every name N not in ``names``."""
    prefixes = sorted({name[:i] for name in names for i in range(len(name) + 1)})
    patterns = []
    for prefix in prefixes:
        following = sorted({name[len(prefix)] for name in names if name.startswith(prefix) and len(name) > len(prefix)})
        if prefix and prefix not in names:
            patterns.append(base + prefix)
        # A name that starts with prefix and goes on with a character no shipped name has there ("/" starts the
        # path below a shipped inventory, which stays).
        patterns.append(base + prefix + "[!" + "".join(following) + ("/" if prefix else "") + "]*")
    return patterns


def build_ignore():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["build_ignore"]


def ignored(path, patterns):
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


def test_galaxy_yml_lists_the_patterns_derived_from_the_shipped_inventories():
    expected = not_shipped_patterns(shipped_inventories())
    listed = [p for p in build_ignore() if p.startswith("inventories/")]
    assert listed == expected, "regenerate galaxy.yml's inventories/ patterns:\n" + "\n".join(
        f'  - "{p}"' for p in expected
    )


@pytest.mark.parametrize(
    "path",
    [
        ".secrets",
        "inventories/my-cluster",
        "inventories/prod",
        "inventories/lab2",
        "inventories/la",
        "inventories/l",
        "inventories/local",
        "inventories/localhost.bak",
        "inventories/cluster",
        "inventories/cluster.example.orig",
        "inventories/cluster.exampl",
        "inventories/hosts.yml",
        "inventories/c",
        "inventories/.secrets",
    ],
)
def test_operator_paths_are_left_out(path):
    assert ignored(path, build_ignore()), path


def test_shipped_inventories_stay():
    out = subprocess.run(
        ["git", "ls-files", "inventories"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    patterns = build_ignore()
    for path in out:
        parts = path.split("/")
        for i in range(2, len(parts) + 1):
            assert not ignored("/".join(parts[:i]), patterns), "/".join(parts[:i])
