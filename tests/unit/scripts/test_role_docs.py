"""scripts/role_docs.py keeps a role's variables in one place: meta/argument_specs.yml. It renders the README table
and the comments of a marked defaults/main.yml from it, and --check fails on any drift."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SPEC = """---
argument_specs:
  main:
    short_description: Demo
    options:
      demo_port:
        type: int
        default: 80
        description: Port C(demo) listens on; see L(the docs,https://example.org/demo).
      demo_names:
        type: list
        elements: str
        default: [a, b]
        description:
          - Names served, I(in order).
          - The first one is B(also) the default name and is used in every answer the demo server gives to a client.
"""

DEFAULTS = """---
# stale comment
demo_port: 80
# another stale comment,
# on two lines
demo_names:
  - a
  - b
"""


@pytest.fixture(scope="module")
def role_docs():
    spec = importlib.util.spec_from_file_location("role_docs", os.path.join(ROOT, "scripts", "role_docs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def root(tmp_path, role_docs):
    (tmp_path / "roles" / "demo" / "meta").mkdir(parents=True)
    (tmp_path / "roles" / "demo" / "defaults").mkdir()
    (tmp_path / "roles" / "demo" / "meta" / "argument_specs.yml").write_text(SPEC)
    marked = DEFAULTS.replace("---\n", "---\n" + role_docs.DEFAULTS_MARK + "\n", 1)
    (tmp_path / "roles" / "demo" / "defaults" / "main.yml").write_text(marked)
    (tmp_path / "README.md").write_text(f"# Demo\n\n{role_docs.BEGIN}\n{role_docs.END}\n\nEnd.\n")
    return tmp_path


def test_the_repository_is_up_to_date(role_docs):
    assert role_docs.main(["--check"]) == 0, "run: python scripts/role_docs.py"


def test_gateway_nginx_defaults_carry_the_generated_comments(role_docs):
    with open(os.path.join(ROOT, "roles", "gateway_nginx", "defaults", "main.yml"), encoding="utf-8") as handle:
        assert role_docs.DEFAULTS_MARK in handle.read().splitlines()


def test_generate_then_check_passes(role_docs, root, capsys):
    assert role_docs.main(["--check"], str(root)) == 1
    assert "out of date: README.md, roles/demo/defaults/main.yml" in capsys.readouterr().err
    assert role_docs.main([], str(root)) == 0
    assert role_docs.main(["--check"], str(root)) == 0
    defaults = (root / "roles" / "demo" / "defaults" / "main.yml").read_text()
    assert defaults == (
        "---\n"
        f"{role_docs.DEFAULTS_MARK}\n"
        "# Port `demo` listens on; see [the docs](https://example.org/demo).\n"
        "demo_port: 80\n"
        "# Names served, *in order*. The first one is **also** the default name and is used in every answer "
        "the demo server gives\n"
        "# to a client.\n"
        "demo_names:\n"
        "  - a\n"
        "  - b\n"
    )
    readme = (root / "README.md").read_text()
    assert "| `demo_port` | int | `80` | Port `demo` listens on; see [the docs](https://example.org/demo). |" in readme
    assert readme.endswith(f"{role_docs.END}\n\nEnd.\n")


def test_check_fails_when_a_description_drifts(role_docs, root, capsys):
    role_docs.main([], str(root))
    spec = root / "roles" / "demo" / "meta" / "argument_specs.yml"
    spec.write_text(SPEC.replace("Port C(demo) listens on", "Port C(demo) answers on"))
    assert role_docs.main(["--check"], str(root)) == 1
    assert "out of date: README.md, roles/demo/defaults/main.yml" in capsys.readouterr().err
    assert "listens on" in (root / "roles" / "demo" / "defaults" / "main.yml").read_text()  # --check writes nothing


def test_check_fails_when_a_comment_is_edited_by_hand(role_docs, root, capsys):
    role_docs.main([], str(root))
    defaults = root / "roles" / "demo" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("# Port `demo` listens on", "# Port `demo` answers on"))
    assert role_docs.main(["--check"], str(root)) == 1
    assert "out of date: roles/demo/defaults/main.yml" in capsys.readouterr().err


def test_check_fails_when_a_default_differs_from_the_spec(role_docs, root, capsys):
    role_docs.main([], str(root))
    defaults = root / "roles" / "demo" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("demo_port: 80", "demo_port: 8080"))
    assert role_docs.main(["--check"], str(root)) == 1
    assert role_docs.main([], str(root)) == 1  # regenerating cannot decide which default is meant
    err = capsys.readouterr().err
    assert "demo_port: defaults/main.yml says 8080, meta/argument_specs.yml says 80; change both" in err


def test_check_fails_when_a_variable_is_missing_on_either_side(role_docs, root, capsys):
    role_docs.main([], str(root))
    defaults = root / "roles" / "demo" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("demo_port: 80\n", "demo_other: 1\n"))
    assert role_docs.main(["--check"], str(root)) == 1
    err = capsys.readouterr().err
    assert "roles/demo/defaults/main.yml sets demo_other, which meta/argument_specs.yml lacks" in err
    assert "roles/demo/meta/argument_specs.yml documents demo_port, which defaults/main.yml lacks" in err


def test_unmarked_defaults_are_left_alone(role_docs, root):
    defaults = root / "roles" / "demo" / "defaults" / "main.yml"
    defaults.write_text(DEFAULTS)
    role_docs.main([], str(root))
    assert defaults.read_text() == DEFAULTS


def test_comment_renders_markup_and_wraps_at_120_columns(role_docs):
    lines = role_docs.comment(
        ["Set C(a) to V(1), O(b=2), I(c), B(d), U(https://e.example/) and L(f,https://f.example/)."] * 3
    )
    assert all(len(line) <= 120 and line.startswith("# ") for line in lines)
    text = " ".join(line[2:] for line in lines)
    assert text.startswith("Set `a` to `1`, `b=2`, *c*, **d**, <https://e.example/> and [f](https://f.example/).")
    assert "C(" not in text and "L(" not in text


def test_blank_lines_between_variables_stay(role_docs):
    text = "---\n" + role_docs.DEFAULTS_MARK + "\na: 1\n\n# old\nb: 2\n"
    assert role_docs.render_defaults(text, {"a": {"description": "A."}, "b": {"description": "B."}}) == (
        "---\n" + role_docs.DEFAULTS_MARK + "\n# A.\na: 1\n\n# B.\nb: 2\n"
    )


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("C(openfaas_timeout | default(60))", "`openfaas_timeout | default(60)`"),
        ("RV(secret_name) and M(onmetal.faas.swarm_stack)", "`secret_name` and `onmetal.faas.swarm_stack`"),
        ("I(C(x) only)", "*`x` only*"),
        (
            "B(never) E(DOCKER_HOST) P(onmetal.faas.timeout_chain#filter)",
            "**never** `DOCKER_HOST` `onmetal.faas.timeout_chain#filter`",
        ),
        (
            "L(text, with a comma,https://example.org/a_(b)) U(https://example.org/)",
            "[text, with a comma](https://example.org/a_(b)) <https://example.org/>",
        ),
        ("ABC(1) and (C) and f(x) stay", "ABC(1) and (C) and f(x) stay"),
        ("C(unbalanced", "C(unbalanced"),
    ],
)
def test_markdown_renders_every_markup_once(role_docs, markup, markdown):
    assert role_docs._markdown(markup) == markdown
