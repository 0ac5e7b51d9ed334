"""Tests of openfaas_secret's pure parts: the name (with the value's hash), validation, plan, diff."""

import hashlib

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_secret as sec
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import OpenFaaSError


def p(**kw):
    base = {"name": "s3-key", "value": "v4lue", "state": "present", "append_hash": False, "force": False}
    base.update(kw)
    return base


def test_name_with_hash_matches_jinja_hash_sha256_prefix():
    # the async demo named its secrets "<name>-{{ (value | hash('sha256'))[:12] }}" before this module
    expected = "s3-key-" + hashlib.sha256(b"v4lue").hexdigest()[:12]
    assert sec.secret_name(p(append_hash=True)) == expected
    assert sec.secret_name(p()) == "s3-key"
    assert sec.secret_name(p(append_hash=True, value="other")) != expected


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(name="bad name"), "secret name 'bad name' is not valid"),
        (dict(name="-x"), "is not valid"),
        (dict(name="a" * 65), "at most 64 characters"),
        (dict(name="a" * 60, append_hash=True), "with the 13 characters append_hash adds"),
        (dict(value=None), "value is required with state=present"),
        (dict(value=None, append_hash=True, state="absent"), "append_hash needs the value"),
        (dict(value=""), "the value has 0 bytes; Swarm stores 1 byte to 500 KiB"),
        (dict(value="x" * (500 * 1024 + 1)), "the value has 512001 bytes"),
    ],
)
def test_bad_input(kw, needle):
    with pytest.raises(OpenFaaSError) as err:
        sec.secret_name(p(**kw))
    assert needle in err.value.msg


def test_absent_needs_no_value():
    assert sec.secret_name(p(state="absent", value=None)) == "s3-key"


@pytest.mark.parametrize(
    "existing, state, force, action",
    [
        ([], "present", False, "create"),
        (["s"], "present", False, "none"),
        (["s"], "present", True, "replace"),
        ([], "present", True, "create"),
        (["s"], "absent", False, "delete"),
        ([], "absent", False, "none"),
    ],
)
def test_plan(existing, state, force, action):
    assert sec.plan(existing, "s", state, force)["action"] == action


def test_diff_never_holds_the_value_or_its_hash():
    for action, present in (("create", False), ("replace", True), ("delete", True), ("none", True)):
        d = sec.diff("s", action, present)
        assert "v4lue" not in str(d) and hashlib.sha256(b"v4lue").hexdigest()[:12] not in str(d)
    assert sec.diff("s", "create", False)["before"] == {}
    assert sec.diff("s", "replace", True)["after"]["value"] == "(hidden; replaced)"
    assert sec.diff("s", "delete", True)["after"] == {}
    assert sec.diff("s", "none", True)["before"] == sec.diff("s", "none", True)["after"]
