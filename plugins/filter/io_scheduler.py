# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for I/O scheduler names, recommendations and class precedence.

Docs in mq_scheduler.yml, recommended_scheduler.yml and disk_class_excludes.yml. The device classes
and their precedence are decided in module_utils/_blockdev; these filters only adapt them to facts
and role variables.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd

# The disk_tuning role's defaults (a unit test holds them together): None leaves a class alone,
# as for SATA/SAS SSDs, where the kernel already picks mq-deadline or none by queue count.
DEFAULT_RECOMMENDATIONS = {
    "nvme": "none",
    "virtio": "none",
    "rotational": "mq-deadline",
    "nonrotational": None,
}


def mq_scheduler(name, legacy=False):
    """Translate a scheduler name to blk-mq naming (or to legacy single-queue naming)."""
    if not isinstance(name, str) or not name.strip():
        raise AnsibleFilterError(f"mq_scheduler expects a scheduler name such as 'noop' or 'mq-deadline'; got {name!r}")
    return bd.canonical_scheduler(name.strip(), "legacy" if legacy else "blk-mq")


def recommended_scheduler(devices, recommendations=None, include_virtual=False):
    """Map ``ansible_devices`` to ``{device: recommended scheduler}``."""
    if not isinstance(devices, Mapping):
        raise AnsibleFilterError(
            "recommended_scheduler expects the ansible_devices fact (a mapping of device name to facts); "
            f"got {type(devices).__name__}"
        )
    table = dict(DEFAULT_RECOMMENDATIONS)
    if recommendations:
        if not isinstance(recommendations, Mapping):
            raise AnsibleFilterError(
                "recommended_scheduler: recommendations must map device classes to schedulers, "
                f"e.g. {{'rotational': 'bfq'}}; got {recommendations!r}"
            )
        unknown = sorted(set(recommendations) - set(DEFAULT_RECOMMENDATIONS))
        if unknown:
            raise AnsibleFilterError(
                f"recommended_scheduler: unknown device class {', '.join(unknown)} in recommendations; "
                f"expected: {', '.join(DEFAULT_RECOMMENDATIONS)}"
            )
        table.update(recommendations)
    out = {}
    for name in sorted(devices):
        facts = devices[name] or {}
        if not isinstance(facts, Mapping):
            raise AnsibleFilterError(f"recommended_scheduler: facts of device {name!r} are not a mapping: {facts!r}")
        if bd.device_kind(name) in bd.VIRTUAL_KINDS and not include_virtual:
            continue
        current = facts.get("scheduler_mode") or ""
        if not current:
            continue  # no scheduler at all (zram, md, ...)
        choice = table[bd.tuning_class(name, str(facts.get("rotational")) == "1")]
        if choice is None:
            continue  # this class is left alone
        if bd.scheduler_flavor([current]) == "legacy":
            choice = bd.canonical_scheduler(choice, "legacy")
        out[name] = choice
    return out


def disk_class_excludes(class_schedulers, device_class):
    """Wildcards a ``device_class`` selection must exclude; the rule is ``_blockdev.class_excludes``.

    ``rotational`` and ``nonrotational`` exclude NVMe and virtio disks always (a null scheduler for
    their own class leaves them alone); ``all`` excludes only those whose own class is tuned.
    """
    if not isinstance(class_schedulers, Mapping):
        raise AnsibleFilterError(
            "disk_class_excludes expects a mapping of device class to scheduler (null: not tuned), "
            f"e.g. {{'nvme': 'none', 'rotational': 'mq-deadline'}}; got {class_schedulers!r}"
        )
    if device_class not in bd.DEVICE_CLASSES:
        raise AnsibleFilterError(
            f"disk_class_excludes: device class {device_class!r} is not one of: {', '.join(bd.DEVICE_CLASSES)}"
        )
    tuned = [name for name, scheduler in class_schedulers.items() if scheduler is not None]
    return bd.class_excludes(device_class, tuned)


class FilterModule:
    """I/O scheduler filters."""

    def filters(self):
        return {
            "mq_scheduler": mq_scheduler,
            "recommended_scheduler": recommended_scheduler,
            "disk_class_excludes": disk_class_excludes,
        }
