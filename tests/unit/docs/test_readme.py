"""The README's role variable tables are generated from the argument specs and must stay in sync."""

import importlib.util
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _role_docs():
    spec = importlib.util.spec_from_file_location("role_docs", os.path.join(ROOT, "scripts", "role_docs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_lists_every_role_variable():
    role_docs = _role_docs()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert role_docs.update(readme, role_docs.render()) == readme, "run: python scripts/role_docs.py"


def test_every_role_has_an_argument_spec_and_is_documented():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    for role in sorted(os.listdir(os.path.join(ROOT, "roles"))):
        assert os.path.exists(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")), role
        assert f"### `onmetal.faas.{role}`" in readme, role


def test_render_marks_required_options_and_choices(tmp_path):
    role_docs = _role_docs()
    spec = tmp_path / "roles" / "demo" / "meta"
    spec.mkdir(parents=True)
    (spec / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: Demo\n    options:\n"
        "      demo_mode:\n        type: str\n        choices: [a, b]\n        default: a\n        description: Mode.\n"
        "      demo_name:\n        type: str\n        required: true\n        description: Name | with pipe.\n"
    )
    out = role_docs.render(str(tmp_path))
    assert "| `demo_mode` | str (a, b) | `a` | Mode. |" in out
    assert "| `demo_name` | str | *required* | Name \\| with pipe. |" in out


def test_render_turns_ansible_markup_into_markdown():
    role_docs = _role_docs()
    text = role_docs._text(
        [
            "Set C(openfaas_idler) to V(true); I(only) B(once); see L(the docs,https://example.org/x) and",
            "U(https://example.org/y); O(swarm_listen_port=2377) | E(DOCKER_HOST).",
        ]
    )
    assert text == (
        "Set `openfaas_idler` to `true`; *only* **once**; see [the docs](https://example.org/x) and "
        "<https://example.org/y>; `swarm_listen_port=2377` \\| `DOCKER_HOST`."
    )


def test_readme_has_no_raw_ansible_markup():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert not re.findall(r"\b[CIOVBLUEM]\([^)]*\)", readme)
