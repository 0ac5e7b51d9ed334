# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by the modules that read block devices from sysfs.
    DOCUMENTATION = r"""
options:
  sysfs_root:
    description:
      - Root of the sysfs tree to read and write, that is the directory that contains C(block/).
      - Only change this for tests that use a fake tree, or for a host's sysfs mounted elsewhere.
    type: path
    default: /sys
"""
