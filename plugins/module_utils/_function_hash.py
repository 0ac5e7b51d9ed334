# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The content hash of a function image: the one implementation.

Used by the functions role (filter onmetal.faas.function_content_hash) and by functions/build.py,
which loads this file by its path: it must stay standard-library only.

The hash is sha256 over the sorted lines "template/<relpath> <sha1>", "function/<relpath> <sha1>",
"base <base image>" and, with extra Debian packages, "packages <sorted unique names>", joined by
newlines; the tag is its first 12 hex digits.

Files that cannot change the image are left out: byte code (*.pyc, *.pyo; the template's Dockerfile
compiles the sources in the image) and the __pycache__ and .pytest_cache directories. Every other
file counts, hidden ones included (the template's Dockerfile copies the whole function directory,
and a hidden file such as .dockerignore changes the build).
"""

from __future__ import annotations

import hashlib
import os

SKIP_DIRS = frozenset(("__pycache__", ".pytest_cache"))
SKIP_SUFFIXES = (".pyc", ".pyo")


def hashed_files(root):
    """(relpath, path) of the files of ``root`` that count, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(SKIP_SUFFIXES):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, root), path


def _sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()  # noqa: S324 - a file checksum (Ansible's find uses it too)


def hash_lines(template_lines, function_lines, base_image, packages=()):
    """The content hash of already checksummed ``(relpath, sha1)`` pairs (pure)."""
    lines = [f"template/{rel} {sha1}" for rel, sha1 in template_lines]
    lines += [f"function/{rel} {sha1}" for rel, sha1 in function_lines]
    lines.append(f"base {base_image}")
    if packages:
        lines.append("packages " + " ".join(sorted(set(packages))))
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:12]


def checksums(root):
    """``(relpath, sha1)`` of every file of ``root`` that counts."""
    return [(rel, _sha1(path)) for rel, path in hashed_files(root)]


def content_hash(function_dir, base_image, template_dir, packages=()):
    """The image tag of the function in ``function_dir`` built from ``template_dir`` on ``base_image``."""
    return hash_lines(checksums(template_dir), checksums(function_dir), base_image, packages)
