# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the functions role: the content hash of a function image."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.module_utils import _function_hash


def function_content_hash(handler, template_dir, base_image, packages=None):
    """The image tag of the function in the controller directory ``handler`` (see _function_hash)."""
    for what, path in (("handler", handler), ("template", template_dir)):
        if not os.path.isdir(str(path)):
            raise AnsibleFilterError(f"function_content_hash: {what} directory {path} does not exist on the controller")
    try:
        return _function_hash.content_hash(str(handler), str(base_image), str(template_dir), list(packages or []))
    except OSError as exc:
        raise AnsibleFilterError(f"function_content_hash: {exc.filename} cannot be read: {exc.strerror}") from None


class FilterModule:
    """Functions role filters."""

    def filters(self):
        return {"function_content_hash": function_content_hash}
