"""The gateway connection options: one argument spec (GATEWAY_ARGS) that agrees with its doc fragment,
and the module contract of both gateway modules (parameters in, result out or OpenFaaSError with the
partial result; no AnsibleModule)."""

import urllib.error

import pytest
import yaml

from ansible_collections.onmetal.faas.plugins.doc_fragments.openfaas_gateway import ModuleDocFragment
from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas as of
from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_secret as sec
from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_client import client_from_params
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_gateway import GATEWAY_ARGS, gateway_args
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import OpenFaaSError

DOCUMENTED = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]


def test_the_doc_fragment_documents_exactly_the_shared_options():
    assert sorted(DOCUMENTED) == sorted(GATEWAY_ARGS)


@pytest.mark.parametrize("name", sorted(GATEWAY_ARGS))
def test_each_shared_option_agrees_with_its_documentation(name):
    spec, doc = GATEWAY_ARGS[name], DOCUMENTED[name]
    assert spec["type"] == doc["type"]
    assert spec.get("default") == doc.get("default")
    assert spec.get("required", False) == doc.get("required", False)


def test_the_password_is_no_log_and_both_modules_share_the_options():
    assert GATEWAY_ARGS["password"]["no_log"] is True
    for spec in (of.ARGUMENT_SPEC, sec.ARGUMENT_SPEC):
        assert {k: spec[k] for k in GATEWAY_ARGS} == GATEWAY_ARGS


def test_gateway_args_picks_the_connection_options():
    params = {"gateway_url": "https://gw:8443/", "username": "u", "password": "p", "timeout": 7}
    params.update(validate_certs=False, name="resize")
    assert gateway_args(params) == dict(
        url="https://gw:8443/", username="u", password="p", timeout=7, validate_certs=False
    )
    client = client_from_params(params, open_url=None)
    assert (client.url, client.username, client.timeout, client.validate_certs) == ("https://gw:8443", "u", 7, False)


def test_openfaas_error_is_the_module_failure_with_http_status():
    exc = OpenFaaSError("GET failed with HTTP 502: bad gateway", 502, "bad gateway")
    assert isinstance(exc, ModuleFailure)
    assert exc.fail_kwargs() == {"msg": "GET failed with HTTP 502: bad gateway", "http_status": 502}
    assert OpenFaaSError("no status").fail_kwargs() == {"msg": "no status"}


def test_with_result_keeps_the_partial_result_and_the_status_on_top():
    exc = OpenFaaSError("boom", 500).with_result({"changed": True, "http_status": 202, "action": "create"})
    assert exc.fail_kwargs() == {"msg": "boom", "changed": True, "http_status": 500, "action": "create"}


def _refused(url, **kwargs):
    raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))


def _params(**extra):
    params = {k: v.get("default") for k, v in GATEWAY_ARGS.items()}
    params["password"] = "x"
    params.update(extra)
    return params


def test_function_run_raises_with_the_partial_result_instead_of_failing_a_module():
    params = _params(**{k: v.get("default") for k, v in of.ARGUMENT_SPEC.items() if k not in GATEWAY_ARGS})
    params.update(name="resize", image="127.0.0.1:5000/resize:1")
    with pytest.raises(OpenFaaSError) as err:
        of.run(params, _refused, check_mode=True)
    kwargs = err.value.fail_kwargs()
    assert "cannot reach the OpenFaaS gateway at http://127.0.0.1:8080" in kwargs.pop("msg")
    assert kwargs == {"changed": False, "name": "resize", "state": "present"}


def test_secret_run_raises_with_the_partial_result_instead_of_failing_a_module():
    params = _params(name="token", value="v", state="present", append_hash=False, force=False)
    with pytest.raises(OpenFaaSError) as err:
        sec.run(params, _refused)
    kwargs = err.value.fail_kwargs()
    assert "cannot reach the OpenFaaS gateway" in kwargs.pop("msg")
    assert kwargs == {"changed": False, "state": "present", "secret_name": "token"}
