# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""faas-cli stack files (``stack.yml``) -> entries of ``openfaas_functions``.

Pure code (file reading and YAML parsing are injected), used by the ``openfaas_stack_functions``
filter on the controller.  The format is faas-cli's (openfaas/faas-cli 0.12.x ``stack/schema.go``:
``Services``, ``Provider``, ``Function``, ``FunctionResources``, ``EnvironmentFile``), read the way
faas-cli reads it (``stack/stack.go``):

* ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` are replaced from the controller's
  environment before the YAML is parsed (faas-cli's envsubst; an unset variable becomes empty);
* ``provider.name`` must be ``openfaas``, ``version`` ``1.0`` when given;
* ``environment_file`` lists YAML files with an ``environment:`` map, read in order, each
  overriding ``environment`` (faas-cli ``commands/deploy.go`` ``readFiles``, ``compileEnvironment``);
  paths are relative to the stack file here (faas-cli reads them relative to its working directory,
  which is normally the stack file's).

A function is built with the collection's template when it has a ``handler`` and its ``lang`` is
one of ``langs`` and ``skip_build`` is not set; its ``image`` is then replaced by the content-hashed
name in the registry, as for any ``openfaas_functions`` entry with a handler.  Any other function is
deployed with its ``image`` as it is.  Unknown keys, and keys that cannot be honoured, are errors
that name the key and the file.
"""

from __future__ import annotations

import os
import re

FUNCTION_KEYS = frozenset(
    {
        "lang",
        "handler",
        "image",
        "fprocess",
        "environment",
        "secrets",
        "skip_build",
        "constraints",
        "environment_file",
        "labels",
        "limits",
        "requests",
        "readonly_root_filesystem",
        "build_options",
        "annotations",
        "namespace",
        "build_args",
        "platforms",
    }
)
TOP_KEYS = frozenset({"version", "provider", "functions", "configuration"})
# "network" was a provider key of faas-cli before 0.8; it is accepted and, as faas-cli 0.12 does, ignored.
PROVIDER_KEYS = frozenset({"name", "gateway", "network"})
CONFIGURATION_KEYS = frozenset({"templates", "copy"})
RESOURCE_KEYS = frozenset({"memory", "cpu"})
DEFAULT_LANGS = ("python3-http", "python3-http-debian")
# The one build arg the upstream python3-http templates define that the collection's template honours:
# extra OS packages, installed here from Debian (the template's "packages").
PACKAGE_BUILD_ARG = "ADDITIONAL_PACKAGE"

_SUBST = re.compile(r"\$\{([^}]*)\}")
_SUBST_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>.*))?$", re.DOTALL)


class StackError(ValueError):
    """A stack file that cannot be deployed; the message names the file and the key."""


def substitute(text, environ, where):
    """faas-cli's envsubst subset: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``."""

    def repl(match):
        body = _SUBST_BODY.match(match.group(1))
        if not body:
            raise StackError(
                f"{where}: '{match.group(0)}' is not a supported substitution; use ${{VAR}}, ${{VAR:-default}} "
                "or ${VAR-default}"
            )
        name, op, default = body.group("name"), body.group("op"), body.group("default")
        value = environ.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        return value or ""

    return _SUBST.sub(repl, text)


def _mapping(value, where, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StackError(f"{where}: {what} must be a mapping, not {type(value).__name__}")
    return value


def _string_list(value, where, what):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StackError(f"{where}: {what} must be a list of strings")
    return list(value)


def _unknown(keys, known, where):
    unknown = sorted(str(k) for k in keys if k not in known)
    if unknown:
        raise StackError(f"{where}: unknown key '{unknown[0]}'; known keys: {', '.join(sorted(known))}")


def _resources(value, where, what):
    value = _mapping(value, where, what)
    _unknown(value, RESOURCE_KEYS, f"{where}.{what}")
    return {k: str(v) for k, v in value.items() if v not in (None, "")} or None


def _env_files(files, base, read_file, load_yaml, where):
    env = {}
    for rel in _string_list(files, where, "environment_file"):
        path = rel if os.path.isabs(rel) else os.path.join(base, rel)
        try:
            text = read_file(path)
        except OSError as exc:
            raise StackError(f"{where}: environment_file '{rel}' cannot be read ({path}: {exc.strerror})") from None
        try:
            data = load_yaml(text) or {}
        except Exception as exc:  # the YAML library's error
            raise StackError(f"{path}: not valid YAML: {exc}") from None
        data = _mapping(data, path, "the file")
        _unknown(data, {"environment"}, path)
        env.update(_mapping(data.get("environment"), path, "environment"))
    return env


def _function(name, spec, ctx):
    where = f"{ctx['path']}: functions.{name}"
    spec = _mapping(spec, where, "a function")
    _unknown(spec, FUNCTION_KEYS, where)
    if spec.get("namespace"):
        raise StackError(f"{where}: namespace '{spec['namespace']}' cannot be used: faas-swarm has no namespaces")
    if spec.get("build_options"):
        raise StackError(
            f"{where}: build_options cannot be used with the collection's template; list the Debian packages in "
            f"build_args.{PACKAGE_BUILD_ARG} (space-separated)"
        )
    env = {**_mapping(spec.get("environment"), where, "environment")}
    env.update(_env_files(spec.get("environment_file"), ctx["base"], ctx["read_file"], ctx["load_yaml"], where))
    entry = {"name": str(name), "stack_file": ctx["path"]}
    lang = spec.get("lang") or ""
    handler = spec.get("handler") or ""
    build = bool(handler) and lang in ctx["langs"] and not spec.get("skip_build")
    if build:
        build_args = _mapping(spec.get("build_args"), where, "build_args")
        _unknown(build_args, {PACKAGE_BUILD_ARG}, f"{where}.build_args")
        entry["handler"] = os.path.normpath(handler if os.path.isabs(handler) else os.path.join(ctx["base"], handler))
        entry["packages"] = str(build_args.get(PACKAGE_BUILD_ARG) or "").split()
    else:
        image = str(spec.get("image") or "").strip()
        if not image:
            why = (
                f"its lang '{lang}' is not built here (built: {', '.join(ctx['langs'])})"
                if handler and lang not in ctx["langs"]
                else "skip_build is set"
                if handler
                else "it has no handler"
            )
            raise StackError(f"{where}: image is required because {why}")
        entry["image"] = image
    entry["env"] = env
    for key, out in (("labels", "labels"), ("annotations", "annotations")):
        entry[out] = _mapping(spec.get(key), where, key)
    entry["secrets"] = _string_list(spec.get("secrets"), where, "secrets")
    entry["constraints"] = _string_list(spec.get("constraints"), where, "constraints")
    for key in ("limits", "requests"):
        res = _resources(spec.get(key), where, key)
        if res:
            entry[key] = res
    if spec.get("fprocess"):
        entry["env_process"] = str(spec["fprocess"])
    if spec.get("readonly_root_filesystem"):
        entry["read_only_root_filesystem"] = True
    return entry


def stack_functions(text, path, read_file, load_yaml, environ=None, langs=DEFAULT_LANGS):
    """The ``openfaas_functions`` entries of one stack file (``text`` read from ``path``)."""
    environ = os.environ if environ is None else environ
    try:
        data = load_yaml(substitute(text, environ, path))
    except StackError:
        raise
    except Exception as exc:
        raise StackError(f"{path}: not valid YAML: {exc}") from None
    data = _mapping(data, path, "a stack file")
    _unknown(data, TOP_KEYS, path)
    if str(data.get("version") or "1.0") != "1.0":
        raise StackError(f"{path}: version '{data['version']}' is not supported; faas-cli knows version 1.0")
    provider = _mapping(data.get("provider"), path, "provider")
    _unknown(provider, PROVIDER_KEYS, f"{path}: provider")
    if provider.get("name") != "openfaas":
        raise StackError(
            f"{path}: provider.name must be 'openfaas' (got {provider.get('name')!r}), as faas-cli requires"
        )
    configuration = _mapping(data.get("configuration"), path, "configuration")
    _unknown(configuration, CONFIGURATION_KEYS, f"{path}: configuration")
    if configuration.get("copy"):
        raise StackError(f"{path}: configuration.copy cannot be used: the build copies only the function's handler")
    functions = _mapping(data.get("functions"), path, "functions")
    if not functions:
        raise StackError(f"{path}: lists no functions")
    ctx = {
        "path": path,
        "base": os.path.dirname(os.path.abspath(path)),
        "read_file": read_file,
        "load_yaml": load_yaml,
        "langs": tuple(langs),
    }
    return [_function(name, spec, ctx) for name, spec in functions.items()]
