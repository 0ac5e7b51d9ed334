"""The functions role end to end on this machine: build on the host engine, push to a registry
container built from Debian's docker-registry, deploy through the fake gateway of
tests/unit/plugins/_fake_gateway.py (both on 127.0.0.1).

Checks the four-step pattern (check, apply, apply again = no change, check again = no change), that
the role's content hash equals functions/build.py's, and the clear failures for a function without
handler.py and for an image that does not exist.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import fn_helpers
import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import FakeGateway

ROOT = fn_helpers.ROOT
PASSWORD = "s3cret-pass-1234"
PLAYBOOK = os.path.join(ROOT, "playbooks", "functions.yml")


@pytest.fixture(scope="module")
def registry():
    reason = fn_helpers.docker_ready()
    if reason:
        pytest.skip(reason)
    name = f"onmetal-fn-registry-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::5000", fn_helpers.registry_image()],
        check=True,
        capture_output=True,
    )
    try:
        out = subprocess.run(["docker", "port", name, "5000/tcp"], check=True, capture_output=True, text=True)
        address = "127.0.0.1:" + out.stdout.split()[0].rsplit(":", 1)[1]
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2).read()
                break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, "registry container did not answer /v2/"
                time.sleep(0.1)
        yield address
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        images = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={address}/*"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if images:
            subprocess.run(["docker", "rmi", *images], capture_output=True, check=False)


def manifest_digest(registry, name, reference):
    """The registry's digest of the manifest ``name:reference`` (a tag or a digest); None when it has none."""
    req = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError:
        return None


def manifest_exists(registry, name, reference):
    return manifest_digest(registry, name, reference) is not None


@pytest.fixture
def gateway(registry):
    def image_ok(image):
        # As the engine pulls it: repo:tag, or repo:tag@digest (then the digest is what is fetched).
        named, _at, digest = image.partition("@")
        repo, tag = named.rsplit(":", 1)
        return repo.startswith(registry + "/") and manifest_exists(registry, repo.split("/", 1)[1], digest or tag)

    with FakeGateway(password=PASSWORD, image_ok=image_ok) as gw:
        yield gw


@pytest.fixture
def run_play(tmp_path, registry, gateway):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "swarm_managers": {
                            "hosts": {
                                "mgr1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                            }
                        }
                    }
                }
            }
        )
    )
    creds = tmp_path / "credentials.yml"
    creds.write_text(f"username: admin\npassword: {PASSWORD}\n")
    creds.chmod(0o600)
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
    )
    bindir = os.path.dirname(sys.executable)

    def run(functions, check=False, **extra):
        evars = {
            "openfaas_functions": functions,
            "functions_registry": registry,
            # One registry container of the test plays both parts; the registry stack needs a swarm.
            "functions_registry_push": registry,
            "functions_registry_deploy": False,
            "functions_base_image": fn_helpers.BASE_IMAGE,
            "functions_gateway_url": gateway.url,
            "functions_credentials_file": str(creds),
            "functions_build_dir": str(tmp_path / "build"),
            "functions_wait_timeout": 3,
        }
        evars.update(extra)
        vars_file = tmp_path / "vars.json"
        vars_file.write_text(json.dumps(evars))
        cmd = [os.path.join(bindir, "ansible-playbook"), "-i", str(inventory), PLAYBOOK, "-e", f"@{vars_file}"]
        if check:
            cmd.append("--check")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
        recap = re.search(r"mgr1\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
        assert recap, proc.stdout + proc.stderr
        return proc, int(recap.group(2)), int(recap.group(4))

    return run


def resize_entry():
    return {"name": "resize", "handler": os.path.join(ROOT, "functions", "resize"), "scale_min": 1, "env": {"A": "1"}}


def test_four_steps_and_hash_matches_build_py(run_play, gateway, registry):
    expected_tag = fn_helpers.build.content_hash(os.path.join(ROOT, "functions", "resize"), fn_helpers.BASE_IMAGE)

    proc, changed, failed = run_play([resize_entry()], check=True)
    assert failed == 0 and changed > 0, proc.stdout
    assert gateway.writes() == []

    proc, changed, failed = run_play([resize_entry()])
    assert failed == 0 and changed > 0, proc.stdout
    assert manifest_exists(registry, "resize", expected_tag), proc.stdout
    fn = gateway.functions["resize"]
    # Deployed pinned by the registry's digest: a task start then needs no registry round trip.
    assert fn["image"] == f"{registry}/resize:{expected_tag}@{manifest_digest(registry, 'resize', expected_tag)}"
    assert fn["labels"]["com.openfaas.scale.min"] == "1" and fn["envVars"] == {"A": "1"}
    assert PASSWORD not in proc.stdout

    proc, changed, failed = run_play([resize_entry()])
    assert (failed, changed) == (0, 0), proc.stdout
    proc, changed, failed = run_play([resize_entry()], check=True)
    assert (failed, changed) == (0, 0), proc.stdout
    assert len(gateway.writes()) == 1


def test_missing_handler_fails_before_anything(run_play, gateway, tmp_path):
    empty = tmp_path / "empty-fn"
    empty.mkdir()
    proc, _changed, failed = run_play([resize_entry(), {"name": "broken", "handler": str(empty)}])
    assert failed == 1
    assert f"function 'broken': {empty}/handler.py not found on the controller" in proc.stdout
    assert gateway.writes() == []


def test_image_that_does_not_exist_fails_clearly(run_play, gateway, registry):
    ghost = f"{registry}/ghost:1"
    proc, _changed, failed = run_play([{"name": "ghost", "image": ghost}])
    assert failed == 1
    assert f"function 'ghost' has 0 of 1 replicas available after 3s (image {ghost})" in proc.stdout
    assert "may not exist" in proc.stdout


def test_wrong_credentials_fail_clearly(run_play, gateway, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text('{"username": "admin", "password": "wrong"}')
    bad.chmod(0o600)
    proc, _changed, failed = run_play([resize_entry()], functions_credentials_file=str(bad))
    assert failed == 1
    assert f"the gateway at {gateway.url} refused the credentials for user admin" in proc.stdout
    assert "wrong" not in proc.stdout.replace("wrong)", "")


def test_credentials_file_mode_is_checked(run_play, tmp_path):
    loose = tmp_path / "loose.yml"
    loose.write_text("username: admin\npassword: x\n")
    loose.chmod(0o644)
    proc, _changed, failed = run_play([resize_entry()], functions_credentials_file=str(loose))
    assert failed == 1 and "has mode 0644 (must be 0600 or 0400)" in proc.stdout


def write_stack(tmp_path, extra=""):
    """A faas-cli stack file (0.12 schema) with the resizer built from python3-http and an environment file."""
    (tmp_path / "env.yml").write_text("environment:\n  B: 2\n")
    stack = tmp_path / "stack.yml"
    stack.write_text(
        "version: 1.0\n"
        "provider:\n  name: openfaas\n  gateway: http://127.0.0.1:8080\n"
        "functions:\n"
        "  resize:\n"
        "    lang: python3-http\n"
        f"    handler: {os.path.join(ROOT, 'functions', 'resize')}\n"
        "    image: example/resize:latest\n"
        "    environment: {A: 1}\n"
        "    environment_file: [env.yml]\n"
        "    labels: {com.openfaas.scale.min: 1}\n"
        "    limits: {cpu: 500m}\n" + extra
    )
    return str(stack)


def test_stack_file_deploys_through_the_same_path(run_play, gateway, registry, tmp_path):
    expected_tag = fn_helpers.build.content_hash(os.path.join(ROOT, "functions", "resize"), fn_helpers.BASE_IMAGE)
    stack = write_stack(tmp_path)
    proc, changed, failed = run_play([], functions_stack_files=[stack])
    assert failed == 0 and changed > 0, proc.stdout
    fn = gateway.functions["resize"]
    digest = manifest_digest(registry, "resize", expected_tag)
    assert fn["image"] == f"{registry}/resize:{expected_tag}@{digest}"  # built here, not example/resize:latest
    assert fn["envVars"] == {"A": "1", "B": "2"}
    assert fn["limits"] == {"cpu": "500000000"}
    proc, changed, failed = run_play([], functions_stack_files=[stack])
    assert (failed, changed) == (0, 0), proc.stdout


def test_stack_file_with_an_unknown_key_fails_before_anything(run_play, gateway, tmp_path):
    stack = write_stack(tmp_path, extra="    lables: {team: media}\n")
    proc, _changed, failed = run_play([], functions_stack_files=[stack])
    assert failed == 1
    assert f"stack file {stack}: functions.resize: unknown key 'lables'" in proc.stdout
    assert gateway.writes() == []
