"""Tests of the faas-cli stack file reader (module_utils/_openfaas_stack.py) and its filter.

The fixture tests/unit/plugins/filter/fixtures/openfaas-stack/stack.yml has the shape faas-cli 0.12
writes and reads (openfaas/faas-cli stack/schema.go): provider, configuration.templates, functions with
lang/handler/image/environment/environment_file/labels/annotations/secrets/limits/requests/constraints/
build_args, a dockerfile function and a skip_build one, and ${VAR:-default} substitution.
"""

import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.filter import openfaas as flt
from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_stack as st
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import desired_request

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "openfaas-stack")
STACK = os.path.join(FIXTURE, "stack.yml")


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def convert(text, path="/srv/fns/stack.yml", files=None, environ=None, langs=st.DEFAULT_LANGS):
    files = files or {}

    def read_file(p):
        if p not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[p]

    return st.stack_functions(text, path, read_file, yaml.safe_load, environ=environ or {}, langs=langs)


def test_fixture_stack_file(monkeypatch):
    monkeypatch.setenv("NODEINFO_TAG", "0.2")
    monkeypatch.delenv("REGISTRY", raising=False)
    resize, figlet, nodeinfo = flt.openfaas_stack_functions([STACK])
    assert resize == {
        "name": "resize",
        "stack_file": STACK,
        "handler": os.path.join(FIXTURE, "resize"),
        "packages": ["libjpeg62-turbo", "libwebp7"],
        # environment_file entries override environment, later files override earlier ones
        "env": {
            "write_timeout": "20s",
            "exec_timeout": 10,
            "write_debug": True,
            "s3_region": "us-east-1",
            "s3_bucket": "uploads",
        },
        "labels": {"com.openfaas.scale.min": 2, "com.openfaas.scale.max": "8", "team": "media"},
        "annotations": {"topic": "images"},
        "secrets": ["s3-access-key"],
        "constraints": ["node.role == worker"],
        "limits": {"memory": "128Mi", "cpu": "500m"},
        "requests": {"cpu": "0.1"},
    }
    assert "image" not in resize  # built here: the registry's content-hashed name is used
    assert figlet["image"] == "ghcr.io/openfaas/figlet:latest" and "handler" not in figlet
    assert figlet["env_process"] == "figlet" and figlet["read_only_root_filesystem"] is True
    assert nodeinfo["image"] == "ghcr.io/openfaas/nodeinfo:0.2"


def test_fixture_entries_make_valid_requests():
    """The converted entries go through the same validation as openfaas_functions (CPU to nano-CPUs)."""
    resize = flt.openfaas_stack_functions(STACK)[0]
    body = desired_request(
        {
            "name": resize["name"],
            "image": "127.0.0.1:5000/resize:abc",
            "env": resize["env"],
            "labels": resize["labels"],
            "annotations": resize["annotations"],
            "secrets": resize["secrets"],
            "constraints": resize["constraints"],
            "limits": resize["limits"],
            "requests": resize["requests"],
        }
    )
    assert body["envVars"]["write_debug"] == "true" and body["envVars"]["exec_timeout"] == "10"
    assert body["limits"] == {"memory": "128Mi", "cpu": "500000000"}
    assert body["requests"] == {"cpu": "100000000"}
    assert body["labels"]["com.openfaas.scale.min"] == "2"


def test_substitution_like_faas_cli():
    env = {"A": "a", "EMPTY": ""}
    assert st.substitute("${A} ${B} ${B:-d} ${EMPTY:-d} ${EMPTY-d} ${B-d} $A", env, "f") == "a  d d  d $A"
    with pytest.raises(st.StackError, match=r"'\$\{A:=x\}' is not a supported substitution"):
        st.substitute("${A:=x}", env, "f")


def test_langs_decide_what_is_built():
    text = "provider: {name: openfaas}\nfunctions:\n  fn: {lang: python3-http-debian, handler: fn, image: x/fn}\n"
    assert "handler" in convert(text)[0]
    built_nothing = convert(text, langs=["python3-http"])[0]
    assert built_nothing["image"] == "x/fn" and "handler" not in built_nothing


@pytest.mark.parametrize(
    "text, needle",
    [
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {lnag: python3-http, image: x}\n",
            "/srv/fns/stack.yml: functions.fn: unknown key 'lnag'; known keys: annotations, build_args,",
        ),
        ("provider: {name: openfaas}\nfuncs: {}\n", "/srv/fns/stack.yml: unknown key 'funcs'"),
        ("provider: {name: openfaas, url: x}\nfunctions: {fn: {image: x}}\n", "provider: unknown key 'url'"),
        ("provider: {name: faas}\nfunctions: {fn: {image: x}}\n", "provider.name must be 'openfaas' (got 'faas')"),
        ("provider: {name: openfaas}\nversion: 2.0\nfunctions: {fn: {image: x}}\n", "version '2.0' is not supported"),
        ("provider: {name: openfaas}\nfunctions: {}\n", "lists no functions"),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {lang: node12, handler: ./fn}\n",
            "functions.fn: image is required because its lang 'node12' is not built here (built: python3-http,",
        ),
        ("provider: {name: openfaas}\nfunctions:\n  fn: {lang: python3-http}\n", "because it has no handler"),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {lang: python3-http, handler: h, skip_build: true}\n",
            "because skip_build is set",
        ),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {image: x, namespace: openfaas-fn}\n",
            "namespace 'openfaas-fn' cannot be used: faas-swarm has no namespaces",
        ),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {lang: python3-http, handler: h, build_options: [dev]}\n",
            "build_options cannot be used",
        ),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {lang: python3-http, handler: h, build_args: {PY: '3'}}\n",
            "functions.fn.build_args: unknown key 'PY'; known keys: ADDITIONAL_PACKAGE",
        ),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {image: x, limits: {memroy: 1g}}\n",
            "functions.fn.limits: unknown key 'memroy'; known keys: cpu, memory",
        ),
        ("provider: {name: openfaas}\nfunctions:\n  fn: {image: x, secrets: s}\n", "secrets must be a list"),
        (
            "provider: {name: openfaas}\nfunctions:\n  fn: {image: x, environment_file: [nope.yml]}\n",
            "environment_file 'nope.yml' cannot be read (/srv/fns/nope.yml: No such file or directory)",
        ),
        (
            "provider: {name: openfaas}\nconfiguration: {copy: [common]}\nfunctions: {fn: {image: x}}\n",
            "configuration.copy cannot be used",
        ),
        ("provider: {name: openfaas}\nfunctions: [a, b]\n", "functions must be a mapping, not list"),
        ("provider: {name: openfaas\n", "not valid YAML"),
    ],
)
def test_errors_name_file_and_key(text, needle):
    with pytest.raises(st.StackError) as err:
        convert(text)
    assert needle in str(err.value)


def test_environment_file_must_hold_environment():
    files = {"/srv/fns/env.yml": "env: {A: 1}\n"}
    text = "provider: {name: openfaas}\nfunctions:\n  fn: {image: x, environment_file: [env.yml]}\n"
    with pytest.raises(st.StackError, match="/srv/fns/env.yml: unknown key 'env'; known keys: environment"):
        convert(text, files=files)


def test_filter_errors_are_filter_errors(tmp_path):
    with pytest.raises(AnsibleFilterError, match="stack file .*missing.yml cannot be read"):
        flt.openfaas_stack_functions([str(tmp_path / "missing.yml")])
    bad = tmp_path / "stack.yml"
    bad.write_text("provider: {name: openfaas}\nfunctions:\n  fn: {imgae: x}\n")
    with pytest.raises(AnsibleFilterError, match=f"stack file {bad}: functions.fn: unknown key 'imgae'"):
        flt.openfaas_stack_functions([str(bad)])
    assert flt.FilterModule().filters()["openfaas_stack_functions"] is flt.openfaas_stack_functions
