"""X-Registry-Auth from the docker CLI's config.json, with a recorded fake credential helper."""

import base64
import json

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._registry_auth import (
    DOCKER_HUB_INDEX,
    RegistryAuthError,
    auth_lookup,
    config_path,
    credentials,
    header,
    parse_config,
    registry_of,
)

DIGEST = "sha256:" + "0" * 64


def _b64(text):
    return base64.b64encode(text.encode()).decode()


class FakeHelper:
    """Stands in for running docker-credential-<name> get; answers (rc, stdout, stderr) per program."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, program, server):
        self.calls.append((program, server))
        return self.answers.get(program, (1, "", f"{program}: not installed"))


def _helper_json(server, user, secret):
    return json.dumps({"ServerURL": server, "Username": user, "Secret": secret})


# --- registry_of / config_path ----------------------------------------------------------------


@pytest.mark.parametrize(
    "image, registry",
    [
        ("busybox", "docker.io"),
        ("busybox:1.36", "docker.io"),
        ("library/busybox", "docker.io"),
        ("user/app:1", "docker.io"),
        ("user/app@" + DIGEST, "docker.io"),
        ("docker.io/library/busybox", "docker.io"),
        ("reg.example:5000/a/b:1@" + DIGEST, "reg.example:5000"),
        ("reg.example/a", "reg.example"),
        ("localhost/x", "localhost"),
        ("localhost:5000/x", "localhost:5000"),
        ("ghcr.io/openfaas/gateway:0.27.0", "ghcr.io"),
    ],
)
def test_registry_of(image, registry):
    assert registry_of(image) == registry


def test_registry_of_legacy_hub_domain():
    assert registry_of("index.docker.io/library/busybox") == "docker.io"


@pytest.mark.parametrize(
    "environ, path",
    [
        ({"DOCKER_CONFIG": "/etc/dc", "HOME": "/home/ops"}, "/etc/dc/config.json"),
        ({"HOME": "/home/ops"}, "/home/ops/.docker/config.json"),
        ({"DOCKER_CONFIG": "", "HOME": "/root"}, "/root/.docker/config.json"),
    ],
)
def test_config_path(environ, path):
    assert config_path(environ) == path


# --- parse_config -----------------------------------------------------------------------------


def test_parse_config_reads_an_object():
    assert parse_config('{"auths": {}}', "/c/config.json") == {"auths": {}}


@pytest.mark.parametrize("text", ["", "  \n"])
def test_parse_config_empty_is_no_config(text):
    assert parse_config(text, "/c/config.json") == {}


def test_parse_config_invalid_json_names_the_path():
    with pytest.raises(RegistryAuthError) as err:
        parse_config('{"auths": ', "/c/config.json")
    assert str(err.value).startswith("/c/config.json is not valid JSON (")
    assert str(err.value).endswith("); fix or remove it (docker login rewrites it)")


@pytest.mark.parametrize("text", ["[]", '"x"', "null", "3"])
def test_parse_config_non_object_names_the_path(text):
    with pytest.raises(RegistryAuthError) as err:
        parse_config(text, "/c/config.json")
    assert str(err.value) == "/c/config.json must hold a JSON object; fix or remove it (docker login rewrites it)"


# --- credentials ------------------------------------------------------------------------------


def test_cred_helpers_beat_auths():
    helper = FakeHelper({"docker-credential-ecr-login": (0, _helper_json("reg:5000", "AWS", "tok"), "")})
    config = {"credHelpers": {"reg:5000": "ecr-login"}, "auths": {"reg:5000": {"auth": _b64("u:p")}}}
    assert credentials(config, "reg:5000", helper) == {
        "username": "AWS",
        "password": "tok",
        "serveraddress": "reg:5000",
    }
    assert helper.calls == [("docker-credential-ecr-login", "reg:5000")]


def test_cred_helper_for_docker_hub_gets_the_index_url():
    helper = FakeHelper({"docker-credential-pass": (0, _helper_json(DOCKER_HUB_INDEX, "me", "s3"), "")})
    config = {"credHelpers": {"https://index.docker.io/v1/": "pass"}}
    assert credentials(config, "docker.io", helper) == {
        "username": "me",
        "password": "s3",
        "serveraddress": "https://index.docker.io/v1/",
    }
    assert helper.calls == [("docker-credential-pass", "https://index.docker.io/v1/")]


def test_auths_keeps_colons_in_the_password():
    helper = FakeHelper()
    config = {"auths": {"reg.example": {"auth": _b64("user:pa:ss")}}}
    assert credentials(config, "reg.example", helper) == {
        "username": "user",
        "password": "pa:ss",
        "serveraddress": "reg.example",
    }
    assert helper.calls == []


def test_auths_identitytoken():
    config = {"auths": {"reg.example": {"identitytoken": "idtok", "auth": _b64("u:p")}}}
    assert credentials(config, "reg.example", FakeHelper()) == {
        "identitytoken": "idtok",
        "serveraddress": "reg.example",
    }


def test_auths_plain_username_and_password():
    config = {"auths": {"reg.example": {"username": "u", "password": "p"}}}
    assert credentials(config, "reg.example", FakeHelper()) == {
        "username": "u",
        "password": "p",
        "serveraddress": "reg.example",
    }


def test_auths_url_form_key_for_a_private_registry():
    config = {"auths": {"https://reg:5000/v2/": {"auth": _b64("a:b")}, "other:5000": {"auth": _b64("x:y")}}}
    assert credentials(config, "reg:5000", FakeHelper()) == {
        "username": "a",
        "password": "b",
        "serveraddress": "reg:5000",
    }


def test_auths_index_url_key_for_docker_hub():
    config = {"auths": {"https://index.docker.io/v1/": {"auth": _b64("hub:pw")}}}
    assert credentials(config, "docker.io", FakeHelper()) == {
        "username": "hub",
        "password": "pw",
        "serveraddress": "https://index.docker.io/v1/",
    }


def test_auths_of_another_registry_do_not_match():
    config = {"auths": {"reg:5000": {"auth": _b64("a:b")}, "https://index.docker.io/v1/": {"auth": _b64("h:p")}}}
    assert credentials(config, "reg:5001", FakeHelper()) is None
    assert credentials(config, "reg", FakeHelper()) is None


def test_creds_store_is_the_fallback():
    helper = FakeHelper({"docker-credential-desktop": (0, _helper_json("reg.example", "d", "pw"), "")})
    # docker login with a credsStore leaves an empty auths entry behind
    config = {"credsStore": "desktop", "auths": {"reg.example": {}}}
    assert credentials(config, "reg.example", helper) == {
        "username": "d",
        "password": "pw",
        "serveraddress": "reg.example",
    }
    assert helper.calls == [("docker-credential-desktop", "reg.example")]


def test_auths_beat_the_creds_store():
    helper = FakeHelper()
    config = {"credsStore": "desktop", "auths": {"reg.example": {"auth": _b64("u:p")}}}
    assert credentials(config, "reg.example", helper)["username"] == "u"
    assert helper.calls == []


def test_no_credentials_at_all():
    helper = FakeHelper()
    assert credentials({}, "docker.io", helper) is None
    assert helper.calls == []


def test_helper_token_username_means_identitytoken():
    helper = FakeHelper({"docker-credential-gcr": (0, _helper_json("reg", "<token>", "refresh-tok"), "")})
    assert credentials({"credsStore": "gcr"}, "reg", helper) == {"identitytoken": "refresh-tok", "serveraddress": "reg"}


@pytest.mark.parametrize(
    "answer",
    [
        (1, "credentials not found in native keychain\n", ""),
        (1, "", "Credentials Not Found"),
    ],
)
def test_helper_without_credentials_means_none(answer):
    helper = FakeHelper({"docker-credential-osxkeychain": answer})
    assert credentials({"credsStore": "osxkeychain"}, "reg", helper) is None
    assert helper.calls == [("docker-credential-osxkeychain", "reg")]


def test_helper_failure_names_the_program():
    helper = FakeHelper({"docker-credential-pass": (2, "", "gpg: decryption failed: No secret key\n")})
    with pytest.raises(RegistryAuthError) as err:
        credentials({"credHelpers": {"reg": "pass"}}, "reg", helper)
    assert str(err.value) == "docker-credential-pass get failed for reg (rc=2): gpg: decryption failed: No secret key"


def test_missing_helper_program_names_the_program():
    with pytest.raises(RegistryAuthError) as err:
        credentials({"credsStore": "nope"}, "reg", FakeHelper())
    assert str(err.value) == "docker-credential-nope get failed for reg (rc=1): docker-credential-nope: not installed"


def test_helper_printing_no_json():
    helper = FakeHelper({"docker-credential-pass": (0, "Username: x\n", "")})
    with pytest.raises(RegistryAuthError) as err:
        credentials({"credsStore": "pass"}, "reg", helper)
    assert str(err.value) == (
        "docker-credential-pass get printed no JSON object for reg; check the helper (docker-credential-pass)"
    )


def test_helper_printing_json_that_is_not_an_object():
    helper = FakeHelper({"docker-credential-pass": (0, "[]", "")})
    with pytest.raises(RegistryAuthError):
        credentials({"credsStore": "pass"}, "reg", helper)


@pytest.mark.parametrize("auth", ["!!!notbase64", _b64("no-colon-here"), "YQ", "/w=="])
def test_bad_auth_entry_says_docker_login(auth):
    config = {"auths": {"https://reg:5000": {"auth": auth}}}
    with pytest.raises(RegistryAuthError) as err:
        credentials(config, "reg:5000", FakeHelper())
    assert str(err.value) == (
        "the 'auth' entry for https://reg:5000 in the docker config is not base64 of user:password; run "
        "'docker login reg:5000' again"
    )


# --- header -----------------------------------------------------------------------------------


def test_header_is_urlsafe_base64_of_sorted_json():
    creds = {"username": "u", "password": "p>?~", "serveraddress": "reg"}
    value = header(creds)
    expected_json = '{"password": "p>?~", "serveraddress": "reg", "username": "u"}'
    assert base64.urlsafe_b64decode(value).decode() == expected_json
    assert value == base64.urlsafe_b64encode(expected_json.encode()).decode()
    assert "+" not in value and "/" not in value
    assert json.loads(base64.urlsafe_b64decode(value)) == creds


# --- auth_lookup ------------------------------------------------------------------------------


class FakeFiles:
    def __init__(self, files):
        self.files = files
        self.reads = []

    def __call__(self, path):
        self.reads.append(path)
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.files[path]


def test_auth_lookup_reads_the_config_once():
    config = {
        "auths": {"https://index.docker.io/v1/": {"auth": _b64("hub:pw")}, "reg:5000": {"identitytoken": "t"}},
        "credHelpers": {"ghcr.io": "gh"},
    }
    files = FakeFiles({"/dc/config.json": json.dumps(config)})
    helper = FakeHelper({"docker-credential-gh": (0, _helper_json("ghcr.io", "bot", "ghp"), "")})
    lookup = auth_lookup({"DOCKER_CONFIG": "/dc"}, files, helper)
    assert files.reads == []  # read when first needed, not on creation

    hub = header({"username": "hub", "password": "pw", "serveraddress": DOCKER_HUB_INDEX})
    assert lookup("busybox") == hub
    assert lookup("library/nginx:1.27") == hub
    assert lookup("reg:5000/team/app:1") == header({"identitytoken": "t", "serveraddress": "reg:5000"})
    gh = header({"username": "bot", "password": "ghp", "serveraddress": "ghcr.io"})
    assert lookup("ghcr.io/openfaas/gateway:0.27.0") == gh
    assert lookup("ghcr.io/openfaas/queue-worker:0.14.0") == gh
    assert lookup("quay.io/x/y") is None
    assert lookup("quay.io/x/z") is None

    assert files.reads == ["/dc/config.json"]
    assert helper.calls == [("docker-credential-gh", "ghcr.io")]


def test_auth_lookup_without_a_config_file():
    files = FakeFiles({})
    helper = FakeHelper()
    lookup = auth_lookup({"HOME": "/home/ops"}, files, helper)
    assert [lookup("busybox"), lookup("reg:5000/a"), lookup("busybox")] == [None, None, None]
    assert files.reads == ["/home/ops/.docker/config.json"]
    assert helper.calls == []


def test_auth_lookup_invalid_config_names_the_path():
    files = FakeFiles({"/dc/config.json": "{oops"})
    lookup = auth_lookup({"DOCKER_CONFIG": "/dc"}, files, FakeHelper())
    with pytest.raises(RegistryAuthError, match=r"^/dc/config\.json is not valid JSON"):
        lookup("busybox")
