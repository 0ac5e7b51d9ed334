# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The disk layer's only I/O: read block devices from sysfs and apply a plan to it.

Every function takes the sysfs root as an argument, so tests point them at a fake tree; the plan
comes from ``_blockdev_plan``.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.onmetal.faas.plugins.module_utils._blockdev import (
    BlockdevError,
    device_classes,
    device_kind,
    parse_scheduler,
)

# Queue files that the info module reports (when present).
INFO_QUEUE_KEYS = (
    "read_ahead_kb",
    "nr_requests",
    "rq_affinity",
    "max_sectors_kb",
    "nomerges",
    "add_random",
    "wbt_lat_usec",
    "write_cache",
)

# --------------------------------------------------------------------------- reading


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def read_device(sysfs_root, name, queue_keys=()):
    """Read one device's scheduler, class attributes and queue tunables from sysfs."""
    base = os.path.join(sysfs_root, "block", name)
    qdir = os.path.join(base, "queue")
    active, available = parse_scheduler(_read(os.path.join(qdir, "scheduler")))
    rot = _read(os.path.join(qdir, "rotational"))
    removable = _read(os.path.join(base, "removable"))
    size = _read(os.path.join(base, "size"))
    queue_files = [f for f in _listdir(qdir) if os.path.isfile(os.path.join(qdir, f))]
    queue = {}
    for key in list(INFO_QUEUE_KEYS) + [k for k in queue_keys if "/" not in k]:
        if key in queue_files and key not in queue:
            value = _read(os.path.join(qdir, key))
            if value is not None:
                queue[key] = value
    iosched = {}
    for param in _listdir(os.path.join(qdir, "iosched")):
        value = _read(os.path.join(qdir, "iosched", param))
        if value is not None:
            iosched[param] = value
    driver = None
    driver_link = os.path.join(base, "device", "driver")
    if os.path.islink(driver_link):
        driver = os.path.basename(os.readlink(driver_link))
    device = {
        "name": name,
        "kind": device_kind(name),
        "rotational": {"1": True, "0": False}.get(rot),
        "removable": {"1": True, "0": False}.get(removable),
        "size_bytes": int(size) * 512 if size and size.isdigit() else None,
        "model": _read(os.path.join(base, "device", "model")),
        "vendor": _read(os.path.join(base, "device", "vendor")),
        "driver": driver,
        "scheduler": active,
        "available": available,
        "queue": queue,
        "queue_files": queue_files,
        "iosched": iosched,
    }
    device["classes"] = device_classes(device)
    return device


def read_block_devices(sysfs_root="/sys", queue_keys=()):
    """``{name: device}`` for every entry of ``<sysfs_root>/block``."""
    block = os.path.join(sysfs_root, "block")
    if not os.path.isdir(block):
        raise BlockdevError(f"{block} does not exist; sysfs_root must point at a mounted sysfs (default /sys)")
    return {name: read_device(sysfs_root, name, queue_keys) for name in _listdir(block)}


def check_writable(plan, sysfs_root="/sys"):
    """Raise before any write if a file the plan writes cannot be written (e.g. read-only /sys)."""
    problems = []
    for name, entry in sorted(plan["devices"].items()):
        for relpath, _value in entry["writes"]:
            if "/iosched/" in relpath:
                continue  # may only appear after the scheduler switch
            path = os.path.join(sysfs_root, "block", name, relpath)
            if not os.access(path, os.W_OK):
                problems.append(path)
    if problems:
        raise BlockdevError(
            "cannot write {} (read-only sysfs, e.g. in a container without a writable /sys, or not root); "
            "run as root on the host or with /sys mounted read-write; nothing was changed".format(", ".join(problems))
        )


# --------------------------------------------------------------------------- writing


def _write_sysfs(path, value):
    with open(path, "w") as handle:
        handle.write(value)


def _oserror_hint(exc):
    if exc.errno == errno.EINVAL:
        return "the kernel rejected the value (EINVAL)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"no permission to write ({errno.errorcode[exc.errno]}); run as root with a writable /sys"
    return os.strerror(exc.errno or 0)


def apply_plan(plan, sysfs_root="/sys", writer=None, reader=None):
    """Write the plan to sysfs.

    Returns ``{"writes": n, "adjusted": [message, ...]}``.  Every written file is read back: the
    scheduler must then be active, and a tunable the kernel stored differently (read_expire is
    kept in timer ticks, so 250 ms may read back as 252 on a HZ=250 kernel) is reported in
    ``adjusted`` with the value to use instead, since it would otherwise change on every run.
    If a write fails, the writes already done are undone (newest first) and BlockdevError says
    what failed and that it was rolled back.
    """
    writer = writer or _write_sysfs
    reader = reader or _read
    done = []
    adjusted = []
    count = 0
    for name, entry in sorted(plan["devices"].items()):
        for relpath, value in entry["writes"]:
            path = os.path.join(sysfs_root, "block", name, relpath)
            if relpath == "queue/scheduler":
                before = entry["previous"]
            else:
                before = entry["queue"].get(relpath[len("queue/") :], {}).get("before")
            try:
                writer(path, value)
                count += 1
                if relpath == "queue/scheduler":
                    active, _avail = parse_scheduler(reader(path))
                    if active != value:
                        raise BlockdevError(f"wrote '{value}' to {path} but the kernel reports '{active}' as active")
            except (OSError, BlockdevError) as exc:
                reason = _oserror_hint(exc) if isinstance(exc, OSError) else str(exc)
                undone, restored = _rollback(done, writer)
                error = BlockdevError(f"writing '{value}' to {path} failed: {reason}; {undone}")
                error.state_restored = restored
                raise error from exc
            if before is not None:
                done.append((path, before))
            if relpath != "queue/scheduler":
                stored = reader(path)
                if stored is not None and stored != value:
                    adjusted.append(
                        f"{name}: wrote '{value}' to {relpath} but the kernel stores '{stored}' (rounded to its "
                        f"granularity); use '{stored}' so that the next run does not report a change again"
                    )
    return {"writes": count, "adjusted": adjusted}


def _rollback(done, writer):
    """Undo ``done`` newest first; returns (message, whether everything was restored)."""
    if not done:
        return "nothing had been changed", True
    failed = []
    for path, before in reversed(done):
        try:
            writer(path, before)
        except OSError:
            failed.append(path)
    if failed:
        restored = len(done) - len(failed)
        return f"rolled back {restored} earlier write(s), but could not restore {', '.join(failed)}", False
    return f"rolled back {len(done)} earlier write(s)", True
