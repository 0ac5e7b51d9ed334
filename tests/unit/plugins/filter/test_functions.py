"""Tests of the function content hash (module_utils/_function_hash.py) and its filter.

The role (filter function_content_hash) and functions/build.py take the hash from the same code;
these tests hold the rules: what counts, what does not, and the value itself.
"""

import hashlib
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.filter import functions as flt
from ansible_collections.onmetal.faas.plugins.module_utils import _function_hash as fh

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def sha1(data):
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - the checksum the hash is made of


@pytest.fixture
def dirs(tmp_path):
    template = tmp_path / "template"
    template.mkdir()
    (template / "Dockerfile").write_bytes(b"FROM x\n")
    (template / "index.py").write_bytes(b"print(1)\n")
    handler = tmp_path / "fn"
    (handler / "lib").mkdir(parents=True)
    (handler / "handler.py").write_bytes(b"def handle(req):\n    return req\n")
    (handler / "lib" / "util.py").write_bytes(b"X = 1\n")
    return str(handler), str(template)


def test_hash_value_is_sha256_of_sorted_lines(dirs):
    handler, template = dirs
    lines = sorted(
        [
            "template/Dockerfile " + sha1(b"FROM x\n"),
            "template/index.py " + sha1(b"print(1)\n"),
            "function/handler.py " + sha1(b"def handle(req):\n    return req\n"),
            "function/lib/util.py " + sha1(b"X = 1\n"),
            "base debian:bookworm-slim",
            "packages curl jq",
        ]
    )
    expected = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]
    assert fh.content_hash(handler, "debian:bookworm-slim", template, ["jq", "curl", "jq"]) == expected
    assert flt.function_content_hash(handler, template, "debian:bookworm-slim", ["jq", "curl"]) == expected


def test_packages_line_only_with_packages(dirs):
    handler, template = dirs
    assert fh.content_hash(handler, "b", template) == fh.content_hash(handler, "b", template, [])
    assert fh.content_hash(handler, "b", template) != fh.content_hash(handler, "b", template, ["curl"])
    assert fh.content_hash(handler, "b", template, ["b", "a"]) == fh.content_hash(handler, "b", template, ["a", "b"])


@pytest.mark.parametrize(
    "relpath",
    [
        "handler.pyc",
        "lib/util.pyo",
        "__pycache__/handler.cpython-311.pyc",
        "__pycache__/notes.txt",
        ".pytest_cache/README.md",
        "lib/__pycache__/util.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
    ],
)
def test_files_that_do_not_change_the_image_do_not_count(dirs, relpath):
    handler, template = dirs
    before = fh.content_hash(handler, "b", template)
    path = os.path.join(handler, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"anything")
    assert fh.content_hash(handler, "b", template) == before


@pytest.mark.parametrize("relpath", [".env", "lib/.config", "data/model.bin", "packages.txt", "requirements.txt"])
@pytest.mark.parametrize("where", ["handler", "template"])
def test_every_file_of_the_image_counts(dirs, relpath, where):
    handler, template = dirs
    before = fh.content_hash(handler, "b", template)
    root = handler if where == "handler" else template
    path = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"x")
    changed = fh.content_hash(handler, "b", template)
    assert changed != before
    with open(path, "wb") as handle:
        handle.write(b"y")
    assert fh.content_hash(handler, "b", template) not in (before, changed)


def test_a_file_moved_between_template_and_handler_changes_the_hash(dirs):
    handler, template = dirs
    before = fh.content_hash(handler, "b", template)
    os.rename(os.path.join(template, "index.py"), os.path.join(handler, "index.py"))
    assert fh.content_hash(handler, "b", template) != before


def test_hashed_files_skip_rules(dirs):
    handler, _template = dirs
    os.makedirs(os.path.join(handler, "__pycache__"))
    with open(os.path.join(handler, "__pycache__", "handler.cpython-311.pyc"), "wb") as handle:
        handle.write(b"")
    with open(os.path.join(handler, ".hidden"), "wb") as handle:
        handle.write(b"")
    assert [rel for rel, _path in fh.hashed_files(handler)] == [".hidden", "handler.py", os.path.join("lib", "util.py")]


def test_filter_names_a_missing_directory(dirs, tmp_path):
    handler, template = dirs
    with pytest.raises(AnsibleFilterError, match=r"handler directory .*nope does not exist"):
        flt.function_content_hash(str(tmp_path / "nope"), template, "b")
    with pytest.raises(AnsibleFilterError, match=r"template directory .*gone does not exist"):
        flt.function_content_hash(handler, str(tmp_path / "gone"), "b")


def test_filter_is_registered():
    assert flt.FilterModule().filters()["function_content_hash"] is flt.function_content_hash


def test_build_py_uses_the_same_code():
    """functions/build.py (outside Ansible) gets the same tag as the role for the shipped resize function."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("onmetal_fn_build_test", os.path.join(ROOT, "functions", "build.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    resize = os.path.join(ROOT, "functions", "resize")
    template = os.path.join(ROOT, "functions", "templates", "python3-http")
    assert build.content_hash(resize, "base:1") == flt.function_content_hash(resize, template, "base:1")
    assert build.content_hash(resize, "base:1", packages=["jq"]) == fh.content_hash(resize, "base:1", template, ["jq"])
