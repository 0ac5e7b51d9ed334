# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build a function image from a template and a handler directory, outside Ansible.

Used by the tests under tests/functions/ and by benchmarks/resizer_latency.py; the functions role
does the same steps with Ansible tasks, and both take the content hash from the same code
(plugins/module_utils/_function_hash.py, loaded here by its path), so an image built here and one
built by the role for the same inputs get the same tag:

    sha256 over the sorted lines "template/<relpath> <sha1>", "function/<relpath> <sha1>",
    "base <base image>" and, with extra Debian packages, "packages <sorted names>", joined by
    newlines; the tag is its first 12 hex digits.

    python3 functions/build.py functions/resize --tag onmetal-faas/resize \
        --base-image onmetal-rig/base:current
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEMPLATE = os.path.join(HERE, "templates", "python3-http")


def _load_function_hash():
    path = os.path.join(os.path.dirname(HERE), "plugins", "module_utils", "_function_hash.py")
    spec = importlib.util.spec_from_file_location("onmetal_function_hash", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_function_hash = _load_function_hash()
_files = _function_hash.hashed_files


class BuildError(Exception):
    pass


def check_function(function_dir, name=None):
    """Raise BuildError unless ``function_dir`` is a directory with handler.py."""
    name = name or os.path.basename(os.path.normpath(function_dir))
    if not os.path.isdir(function_dir):
        raise BuildError(f"function '{name}': handler directory {function_dir} does not exist")
    if not os.path.isfile(os.path.join(function_dir, "handler.py")):
        raise BuildError(
            f"function '{name}': {function_dir} has no handler.py (it must define handle(req) or handle(event, ctx))"
        )


def content_hash(function_dir, base_image, template_dir=DEFAULT_TEMPLATE, packages=()):
    return _function_hash.content_hash(function_dir, base_image, template_dir, packages)


def assemble(function_dir, dest, template_dir=DEFAULT_TEMPLATE, packages=()):
    """Write the build context (template files + ./function/) into ``dest``."""
    check_function(function_dir)
    for rel, path in _files(template_dir):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(path, target)
    for rel, path in _files(function_dir):
        target = os.path.join(dest, "function", rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(path, target)
    if packages:
        with open(os.path.join(dest, "function", "extra-packages.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(sorted(set(packages))) + "\n")
    return dest


def image_exists(image, docker="docker"):
    return subprocess.run([docker, "image", "inspect", image], capture_output=True, check=False).returncode == 0


def build(
    function_dir,
    repository,
    base_image,
    template_dir=DEFAULT_TEMPLATE,
    docker="docker",
    force=False,
    packages=(),
    no_cache=False,
):
    """Build ``repository:<content hash>`` unless it exists; returns (image, seconds, built)."""
    image = f"{repository}:{content_hash(function_dir, base_image, template_dir, packages)}"
    if not force and image_exists(image, docker):
        return image, 0.0, False
    with tempfile.TemporaryDirectory(prefix="onmetal-fn-") as ctx:
        assemble(function_dir, ctx, template_dir, packages)
        started = time.monotonic()
        cmd = [docker, "build", "-q", "--build-arg", f"BASE_IMAGE={base_image}", "-t", image]
        proc = subprocess.run(
            cmd + (["--no-cache"] if no_cache else []) + [ctx], capture_output=True, text=True, check=False
        )
        elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise BuildError(f"docker build of {image} failed:\n{proc.stdout}{proc.stderr}")
    return image, elapsed, True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("function_dir")
    parser.add_argument("--tag", required=True, help="repository; the tag is the content hash")
    parser.add_argument("--base-image", default="debian:bookworm-slim")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE)
    parser.add_argument("--package", action="append", default=[], help="extra Debian package (repeatable)")
    parser.add_argument("--force", action="store_true", help="build even if the tag exists")
    parser.add_argument("--no-cache", action="store_true", help="docker build --no-cache (with --force)")
    args = parser.parse_args(argv)
    try:
        image, seconds, built = build(
            args.function_dir,
            args.tag,
            args.base_image,
            args.template,
            force=args.force,
            packages=args.package,
            no_cache=args.no_cache,
        )
    except BuildError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    print(f"{image} built in {seconds:.1f}s" if built else f"{image} already present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
