# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure I/O scheduler planner: desired queue settings in, what applying them would change out.

Plain data in, plain data out (see ``_blockdev`` for the vocabulary); nothing here reads or writes
sysfs. ``_blockdev_sysfs`` reads the state this plans from and applies the plan it returns.
"""

from __future__ import annotations

import os
import re

from ansible_collections.onmetal.faas.plugins.module_utils._blockdev import (
    LEGACY_TO_MQ,
    MQ_TO_LEGACY,
    SCHEDULER_KMODS,
    BlockdevError,
    scheduler_flavor,
)

# iosched parameters each scheduler offers (used when the scheduler is about to change, so the
# parameters cannot yet be listed from sysfs).
KNOWN_IOSCHED_PARAMS = {
    "none": (),
    "noop": (),
    "mq-deadline": (
        "async_depth",
        "fifo_batch",
        "front_merges",
        "prio_aging_expire",
        "read_expire",
        "write_expire",
        "writes_starved",
    ),
    "deadline": ("fifo_batch", "front_merges", "read_expire", "write_expire", "writes_starved"),
    "kyber": ("read_lat_nsec", "write_lat_nsec"),
    "bfq": (
        "back_seek_max",
        "back_seek_penalty",
        "fifo_expire_async",
        "fifo_expire_sync",
        "low_latency",
        "max_budget",
        "slice_idle",
        "slice_idle_us",
        "strict_guarantees",
        "timeout_sync",
    ),
    "cfq": (
        "back_seek_max",
        "back_seek_penalty",
        "fifo_expire_async",
        "fifo_expire_sync",
        "group_idle",
        "group_idle_us",
        "low_latency",
        "quantum",
        "slice_async",
        "slice_async_rq",
        "slice_async_us",
        "slice_idle",
        "slice_idle_us",
        "slice_sync",
        "slice_sync_us",
        "target_latency",
        "target_latency_us",
    ),
}

# Queue files that are read-only or must be set through a dedicated option.
_QUEUE_NOT_TUNABLE = frozenset(
    (
        "scheduler",
        "rotational",
        "hw_sector_size",
        "logical_block_size",
        "physical_block_size",
        "max_hw_sectors_kb",
        "max_segments",
        "max_segment_size",
        "minimum_io_size",
        "optimal_io_size",
        "zoned",
        "nr_zones",
        "chunk_sectors",
        "dax",
    )
)

# Tunables that the kernel resets when the scheduler is switched; they are rewritten after a
# switch even when the value read beforehand already matched.
_RESET_BY_SCHEDULER_SWITCH = frozenset(("queue/nr_requests",))

_INT_LIMITS = {
    "read_ahead_kb": (0, None),
    "nr_requests": (1, None),
    "rq_affinity": (0, 2),
}

_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:+-]+( [A-Za-z0-9_.:+-]+)*$")

# --------------------------------------------------------------------------- desired settings


def _format_value(key, value):
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        value = value.strip()
        if _VALUE_RE.match(value):
            return value
    raise BlockdevError(
        f"queue tunable '{key}' has value {value!r}; expected an integer or a plain word (letters, digits, '_.:+-')"
    )


def _check_limits(key, text, page_size_kb):
    """Raise if a tunable with known limits (``_INT_LIMITS``) is out of them, or read-ahead is not whole pages."""
    if key not in _INT_LIMITS:
        return
    low, high = _INT_LIMITS[key]
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        expected = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise BlockdevError(f"queue tunable '{key}' has value '{text}'; expected {expected}")
    if key == "read_ahead_kb" and page_size_kb and number % page_size_kb:
        lower = number - number % page_size_kb
        raise BlockdevError(
            f"read_ahead_kb {number} is not a multiple of the page size ({page_size_kb} KiB): the kernel "
            f"would store {lower} and every run would report a change; use {lower} or {lower + page_size_kb}"
        )


def normalize_queue(queue, page_size_kb=4):
    """Flatten and validate the ``queue`` option into ``{"queue/<key>": "value"}``.

    ``{"read_ahead_kb": 256, "iosched": {"read_expire": 100}}`` and
    ``{"iosched/read_expire": 100}`` are both accepted.  Queue keys come first (sorted), then
    iosched keys (sorted), which is the order they must be written in.
    """
    flat = {}
    for key, value in (queue or {}).items():
        if key == "iosched":
            if not isinstance(value, dict):
                raise BlockdevError(
                    "queue.iosched must be a dictionary of scheduler parameters such as {read_expire: 100}; "
                    f"got {value!r}"
                )
            for param, pvalue in value.items():
                flat[f"iosched/{param}"] = pvalue
        else:
            flat[key] = value
    out_queue = {}
    out_iosched = {}
    for key, value in flat.items():
        if not re.match(r"^(iosched/)?[a-z0-9_]+$", key):
            raise BlockdevError(
                f"queue tunable '{key}' is not a valid name; expected a file name under /sys/block/<dev>/queue "
                "such as 'read_ahead_kb' or 'iosched/read_expire'"
            )
        if key == "scheduler":
            raise BlockdevError("set the scheduler with the 'scheduler' option, not queue.scheduler")
        if key in _QUEUE_NOT_TUNABLE:
            raise BlockdevError(f"queue tunable '{key}' is read-only or not meant to be set; remove it from queue")
        text = _format_value(key, value)
        _check_limits(key, text, page_size_kb)
        target = out_iosched if key.startswith("iosched/") else out_queue
        target["queue/" + key] = text
    ordered = {}
    for part in (out_queue, out_iosched):
        for key in sorted(part):
            ordered[key] = part[key]
    return ordered


# --------------------------------------------------------------------------- planning


def tunable_queue_files(device):
    """Names of the files in a device's queue/ directory that the ``queue`` option may set."""
    return [f for f in device["queue_files"] if f not in _QUEUE_NOT_TUNABLE]


def unavailable_message(device, requested, available):
    """Explain that a device does not offer a scheduler, and what to do about it."""
    if not available:
        return (
            f"{device} has no I/O scheduler (no queue/scheduler file, e.g. a zram, md or stacked device); "
            "leave it out of the selection or only set queue tunables"
        )
    msg = f"scheduler '{requested}' is not offered by {device}; available: {', '.join(available)}"
    flavor = scheduler_flavor(available)
    mq_name = LEGACY_TO_MQ.get(requested)
    if flavor == "blk-mq" and requested == "noop":
        return msg + "; on blk-mq kernels use 'none'"
    if flavor == "blk-mq" and mq_name:
        msg += f"; '{requested}' is called '{mq_name}' on blk-mq kernels"
        requested = mq_name
    if requested in SCHEDULER_KMODS and flavor == "blk-mq":
        return msg + (
            f"; '{requested}' is usually a kernel module that is not loaded yet: "
            f"run 'modprobe {SCHEDULER_KMODS[requested]}' or set load_module: true"
        )
    return msg + "; choose one of the available schedulers"


def resolve_scheduler(device, requested, available):
    """The name to write for ``requested`` on a device offering ``available``.

    Returns ``(name, mapped_from)`` where ``mapped_from`` is the requested name when it had to be
    translated between legacy and blk-mq naming, else ``None``.  Raises BlockdevError.
    """
    if requested in available:
        return requested, None
    for table in (LEGACY_TO_MQ, MQ_TO_LEGACY):
        alias = table.get(requested)
        if alias and alias in available:
            return alias, requested
    raise BlockdevError(unavailable_message(device, requested, available))


def _setting_before(name, dev, short, target, switching):
    """The value a queue setting has before the run, as ``(before, problem)``.

    ``short`` is the path under ``queue/``; ``problem`` is a message when the device does not offer
    the setting. An iosched parameter of a scheduler being switched to has no value yet (None),
    and is checked against what that scheduler is known to offer.
    """
    if not short.startswith("iosched/"):
        if short not in dev["queue"]:
            offered = ", ".join(tunable_queue_files(dev)) or "(none)"
            return None, f"queue tunable '{short}' is not offered by {name}; available: {offered}"
        return dev["queue"][short], None
    param = short[len("iosched/") :]
    if switching:
        known = KNOWN_IOSCHED_PARAMS.get(target)
        if known is not None and param not in known:
            hint = "known: " + ", ".join(known) if known else f"'{target}' has no parameters"
            return None, f"iosched parameter '{param}' is not known for scheduler '{target}' (set on {name}); {hint}"
        return None, None
    if param not in dev["iosched"]:
        offered = ", ".join(sorted(dev["iosched"])) or "(none)"
        return (
            None,
            f"iosched parameter '{param}' is not offered by scheduler '{target}' on {name}; available: {offered}",
        )
    return dev["iosched"][param], None


def _device_plan(name, dev, target, settings, problems):
    """One device's plan entry for scheduler ``target`` and ``settings``; problems are appended."""
    switching = target != dev["scheduler"]
    entry = {
        "previous": dev["scheduler"],
        "current": target,
        "available": list(dev["available"]),
        "changed": False,
        "queue": {},
        "writes": [["queue/scheduler", target]] if switching else [],
    }
    for key, value in settings.items():
        short = key[len("queue/") :]
        before, problem = _setting_before(name, dev, short, target, switching)
        if problem:
            problems.append(problem)
            continue
        entry["queue"][short] = {"before": before, "after": value}
        if before != value or (switching and key in _RESET_BY_SCHEDULER_SWITCH):
            entry["writes"].append([key, value])
    entry["changed"] = bool(entry["writes"])
    return entry


def _raise_problems(problems):
    """One BlockdevError listing every problem (nothing was changed), if there are any."""
    if len(problems) == 1:
        raise BlockdevError(f"{problems[0]}; nothing was changed")
    if problems:
        raise BlockdevError(f"{len(problems)} problems, nothing was changed: {' | '.join(problems)}")


def _mapping_warnings(mapped):
    """One warning per (requested, written) scheduler name pair that had to be translated."""
    warnings = []
    for (old, new), names in sorted(mapped.items()):
        if old in LEGACY_TO_MQ:
            why = f"the blk-mq block layer (every kernel >= 5.0) has no '{old}'"
        else:
            why = "these devices use the legacy single-queue block layer"
        warnings.append(
            f"scheduler '{old}' was mapped to '{new}' on {', '.join(names)}: {why}; "
            f"write '{new}' to silence this warning"
        )
    return warnings


def plan_changes(state, selected, scheduler=None, settings=None, sysfs_root="/sys"):
    """Compute what applying ``scheduler`` and ``settings`` to ``selected`` devices would do.

    Validates every device before returning; on any problem raises one BlockdevError that lists
    all problems, so nothing is ever half-applied.  Returns::

        {"devices": {name: {"previous", "current", "available", "changed",
                            "queue": {key: {"before", "after"}}, "writes": [[relpath, value]]}},
         "warnings": [...], "changed": bool, "writes": int}
    """
    settings = settings or {}
    problems = []
    unavailable = {}
    mapped = {}
    devices = {}
    for name in selected:
        dev = state[name]
        target = dev["scheduler"]
        if scheduler:
            try:
                target, mapped_from = resolve_scheduler(name, scheduler, dev["available"])
            except BlockdevError:
                unavailable.setdefault(tuple(dev["available"]), []).append(name)
                continue
            if mapped_from:
                mapped.setdefault((mapped_from, target), []).append(name)
        devices[name] = _device_plan(name, dev, target, settings, problems)
    unavailable_problems = [
        unavailable_message(", ".join(names), scheduler, list(avail)) for avail, names in unavailable.items()
    ]
    _raise_problems(unavailable_problems + problems)
    return {
        "devices": devices,
        "warnings": _mapping_warnings(mapped),
        "changed": any(d["changed"] for d in devices.values()),
        "writes": sum(len(d["writes"]) for d in devices.values()),
    }


def plan_diff(plan, sysfs_root="/sys"):
    """Ansible diff entries (before/after text) for every device the plan changes."""
    out = []
    for name, entry in sorted(plan["devices"].items()):
        if not entry["changed"]:
            continue
        before = [f"scheduler: {entry['previous']}"]
        after = [f"scheduler: {entry['current']}"]
        for key, vals in entry["queue"].items():
            before.append(f"{key}: {'(absent)' if vals['before'] is None else vals['before']}")
            after.append(f"{key}: {vals['after']}")
        header = os.path.join(sysfs_root, "block", name, "queue")
        out.append(
            {
                "before_header": header,
                "after_header": header,
                "before": "\n".join(before) + "\n",
                "after": "\n".join(after) + "\n",
            }
        )
    return out
