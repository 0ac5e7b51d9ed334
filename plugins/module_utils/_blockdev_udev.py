# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The persistent side of io_scheduler: the udev rules text that applies a selection's settings.

Pure: builds text from the same options the runtime selection uses (see ``_blockdev``); the module
logic writes the file.
"""

from __future__ import annotations

from ansible_collections.onmetal.faas.plugins.module_utils._blockdev import (
    NAMED_KINDS,
    VIRTUAL_KINDS,
    BlockdevError,
    canonical_scheduler,
    glob_names_kind,
    is_glob,
    strip_dev,
)

DEFAULT_RULES_PATH = "/etc/udev/rules.d/60-onmetal-io-scheduler.rules"

# Match keys per device_class; nvme and virtio use the udev form of the kind's name pattern.
_CLASS_MATCH = {
    "nvme": [f'KERNEL=="{NAMED_KINDS["nvme"].udev}"'],
    "virtio": [f'KERNEL=="{NAMED_KINDS["virtio"].udev}"'],
    "rotational": ['ATTR{queue/rotational}=="1"'],
    "nonrotational": ['ATTR{queue/rotational}=="0"'],
    "all": [],
}


def _virtual_exclusion(pattern=None):
    kinds = [k for k in VIRTUAL_KINDS if pattern is None or not glob_names_kind(pattern, k)]
    if not kinds:
        return []
    return ['KERNEL!="{}"'.format("|".join(VIRTUAL_KINDS[k] + "*" for k in kinds))]


def render_rules(devices=None, device_class=None, exclude=None, scheduler=None, settings=None, flavor="blk-mq"):
    """Text of a udev rules file applying the same settings as the runtime selection.

    One rule per name/wildcard and one for the class; the match keys mirror
    :func:`select_devices` so a hot-plugged device gets exactly what a present one got.
    """
    settings = settings or {}
    if any('"' in p or "|" in p for p in (devices or []) + (exclude or [])):
        raise BlockdevError("device names and patterns must not contain '\"' or '|' (they end up in udev rules)")
    assigns = []
    if scheduler:
        assigns.append(f'ATTR{{queue/scheduler}}="{canonical_scheduler(scheduler, flavor)}"')
    for key, value in settings.items():
        assigns.append(f'ATTR{{{key}}}="{value}"')
    if not assigns:
        raise BlockdevError("nothing to persist: set scheduler or queue")
    excl = ['KERNEL!="{}"'.format("|".join(strip_dev(p) for p in exclude))] if exclude else []
    base = ['ACTION=="add|change"', 'SUBSYSTEM=="block"', 'ENV{DEVTYPE}=="disk"']
    rules = []
    for raw in devices or []:
        pattern = strip_dev(raw)
        matches = [f'KERNEL=="{pattern}"']
        if is_glob(pattern):
            matches += _virtual_exclusion(pattern)
        rules.append((f"devices: {pattern}", base + matches + excl))
    if device_class:
        matches = list(_CLASS_MATCH[device_class])
        if device_class in ("rotational", "nonrotational", "all"):
            matches = _virtual_exclusion() + matches
        rules.append((f"device_class: {device_class}", base + matches + excl))
    lines = [
        "# Managed by Ansible (onmetal.faas.io_scheduler); local changes will be overwritten.",
        "# Applies the I/O scheduler settings when block devices appear (add) or change.",
    ]
    for comment, matches in rules:
        lines.append(f"# {comment}")
        lines.append(", ".join(matches + assigns))
    return "\n".join(lines) + "\n"
