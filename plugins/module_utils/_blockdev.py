# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Block device inspection and I/O scheduler planning for onmetal.faas.

Private module_utils: everything here is plain data in, plain data out, except for the small
sysfs reader/writer helpers at the bottom, which take the sysfs root as an argument so tests
can point them at a fake tree.

Vocabulary:

* *state*: ``{name: device}`` as returned by :func:`read_block_devices`.
* *settings*: the normalized desired values, ``{"queue/scheduler": "none",
  "queue/read_ahead_kb": "256", "queue/iosched/read_expire": "100"}`` -- keys are paths relative
  to ``/sys/block/<dev>/``, which is also what udev's ``ATTR{...}`` takes.
* *plan*: per device, what would be written and what it looks like before and after.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure

# Legacy single-queue names and their blk-mq successors (kernel >= 5.0 has only blk-mq).
LEGACY_TO_MQ = {"noop": "none", "deadline": "mq-deadline", "cfq": "bfq"}
MQ_TO_LEGACY = {v: k for k, v in LEGACY_TO_MQ.items()}
MQ_SCHEDULERS = ("none", "mq-deadline", "kyber", "bfq")
LEGACY_SCHEDULERS = ("noop", "deadline", "cfq")

# Schedulers that are often built as modules, and the module that provides them.
SCHEDULER_KMODS = {"mq-deadline": "mq-deadline", "kyber": "kyber-iosched", "bfq": "bfq"}

# Device classes the io_scheduler module selects by.
DEVICE_CLASSES = ("nvme", "virtio", "rotational", "nonrotational", "all")

# Kinds of virtual device that class and wildcard selection skip; name -> kernel name prefix.
VIRTUAL_KINDS = {"loop": "loop", "ram": "ram", "zram": "zram", "dm": "dm-"}

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
_GLOB_CHARS = "*?["
_NVME_RE = re.compile(r"^nvme\d+n\d+$")
_VIRTIO_RE = re.compile(r"^vd[a-z]+$")

DEFAULT_RULES_PATH = "/etc/udev/rules.d/60-onmetal-io-scheduler.rules"


class BlockdevError(ModuleFailure):
    """A problem the user can fix; the message says what and how."""


# --------------------------------------------------------------------------- parsing


def parse_scheduler(text):
    """Parse the content of ``queue/scheduler``.

    Returns ``(active, available)``.  ``'[none] mq-deadline kyber bfq'`` gives
    ``('none', ['none', 'mq-deadline', 'kyber', 'bfq'])``; a legacy kernel's
    ``'noop deadline [cfq]'`` gives ``('cfq', [...])``; device-mapper's unbracketed ``'none'``
    gives ``('none', ['none'])``; empty or missing content gives ``(None, [])``.
    """
    if text is None:
        return None, []
    active = None
    available = []
    for token in text.split():
        if len(token) > 2 and token.startswith("[") and token.endswith("]"):
            token = token[1:-1]
            active = token
        if token not in available:
            available.append(token)
    if active is None and len(available) == 1:
        active = available[0]
    return active, available


def scheduler_flavor(available):
    """``'blk-mq'``, ``'legacy'`` or ``None`` (nothing recognisable) for one available list."""
    if any(s in MQ_SCHEDULERS for s in available):
        return "blk-mq"
    if any(s in LEGACY_SCHEDULERS for s in available):
        return "legacy"
    return None


def host_flavor(state):
    """The block layer flavour of a host: ``'legacy'`` only if no device offers blk-mq names."""
    flavors = {scheduler_flavor(dev["available"]) for dev in state.values()}
    if "blk-mq" in flavors:
        return "blk-mq"
    if "legacy" in flavors:
        return "legacy"
    return "blk-mq"


def canonical_scheduler(name, flavor="blk-mq"):
    """Map a scheduler name to the naming of a block layer flavour (no availability check)."""
    if flavor == "legacy":
        return MQ_TO_LEGACY.get(name, name)
    return LEGACY_TO_MQ.get(name, name)


def device_kind(name):
    """Kind of a block device from its kernel name (stable across kernels and udev)."""
    for kind, prefix in VIRTUAL_KINDS.items():
        if name.startswith(prefix):
            return kind
    if _NVME_RE.match(name):
        return "nvme"
    if _VIRTIO_RE.match(name):
        return "virtio"
    for kind, prefix in (("scsi", "sd"), ("mmc", "mmcblk"), ("md", "md"), ("xen", "xvd"), ("optical", "sr")):
        if name.startswith(prefix):
            return kind
    return "other"


def device_classes(device):
    """Classes (as used by ``device_class``) a device belongs to; empty for virtual kinds."""
    if device["kind"] in VIRTUAL_KINDS:
        return []
    classes = []
    if device["kind"] in ("nvme", "virtio"):
        classes.append(device["kind"])
    if device.get("rotational") is True:
        classes.append("rotational")
    elif device.get("rotational") is False:
        classes.append("nonrotational")
    classes.append("all")
    return classes


def _is_glob(pattern):
    return any(c in pattern for c in _GLOB_CHARS)


def _glob_prefix(pattern):
    idx = min([pattern.find(c) for c in _GLOB_CHARS if c in pattern] or [len(pattern)])
    return pattern[:idx]


def _glob_names_kind(pattern, kind):
    """True if a wildcard names a virtual kind explicitly (``loop*`` does, ``*`` does not)."""
    return _glob_prefix(pattern).startswith(VIRTUAL_KINDS[kind])


def _strip_dev(name):
    return name[5:] if name.startswith("/dev/") else name


# --------------------------------------------------------------------------- selection


def select_devices(state, devices=None, device_class=None, exclude=None, sysfs_root="/sys"):
    """Names of the devices selected by names/globs and/or a class, minus ``exclude``.

    Literal names must exist.  Wildcards and classes may match nothing.  loop, ram, zram and
    device-mapper devices are selected only when named (literally or by a wildcard whose fixed
    prefix names the kind, such as ``loop*``).
    """
    if device_class is not None and device_class not in DEVICE_CLASSES:
        raise BlockdevError(
            f"device_class '{device_class}' is not supported; expected one of: {', '.join(DEVICE_CLASSES)}"
        )
    selected = set()
    missing = []
    for raw in devices or []:
        pattern = _strip_dev(raw)
        if _is_glob(pattern):
            for name, dev in state.items():
                if not fnmatch.fnmatchcase(name, pattern):
                    continue
                if dev["kind"] in VIRTUAL_KINDS and not _glob_names_kind(pattern, dev["kind"]):
                    continue
                selected.add(name)
        elif pattern in state:
            selected.add(pattern)
        else:
            missing.append(raw)
    if missing:
        raise BlockdevError(
            f"block device {', '.join(repr(m) for m in missing)} not found in {os.path.join(sysfs_root, 'block')}; "
            f"block devices found: {', '.join(sorted(state)) or '(none)'}; use one of these names "
            "or a wildcard such as 'nvme*'"
        )
    if device_class:
        for name, dev in state.items():
            if device_class in device_classes(dev):
                selected.add(name)
    for raw in exclude or []:
        pattern = _strip_dev(raw)
        selected = {n for n in selected if not fnmatch.fnmatchcase(n, pattern)}
    return sorted(selected)


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
        if key in _INT_LIMITS:
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
        entry = {
            "previous": dev["scheduler"],
            "current": dev["scheduler"],
            "available": list(dev["available"]),
            "changed": False,
            "queue": {},
            "writes": [],
        }
        target = dev["scheduler"]
        switching = False
        if scheduler:
            try:
                target, mapped_from = resolve_scheduler(name, scheduler, dev["available"])
            except BlockdevError:
                unavailable.setdefault(tuple(dev["available"]), []).append(name)
                continue
            if mapped_from:
                mapped.setdefault((mapped_from, target), []).append(name)
            if target != dev["scheduler"]:
                switching = True
                entry["current"] = target
                entry["writes"].append(["queue/scheduler", target])
        for key, value in settings.items():
            short = key[len("queue/") :]
            if short.startswith("iosched/"):
                param = short[len("iosched/") :]
                if switching:
                    known = KNOWN_IOSCHED_PARAMS.get(target)
                    if known is not None and param not in known:
                        problems.append(
                            "iosched parameter '{}' is not known for scheduler '{}' (set on {}); {}".format(
                                param,
                                target,
                                name,
                                "known: " + ", ".join(known) if known else f"'{target}' has no parameters",
                            )
                        )
                        continue
                    before = None
                else:
                    if param not in dev["iosched"]:
                        offered = ", ".join(sorted(dev["iosched"])) or "(none)"
                        problems.append(
                            f"iosched parameter '{param}' is not offered by scheduler '{target}' on {name}; "
                            f"available: {offered}"
                        )
                        continue
                    before = dev["iosched"][param]
            else:
                if short not in dev["queue"]:
                    problems.append(
                        "queue tunable '{}' is not offered by {}; available: {}".format(
                            short, name, ", ".join(tunable_queue_files(dev)) or "(none)"
                        )
                    )
                    continue
                before = dev["queue"][short]
            entry["queue"][short] = {"before": before, "after": value}
            if before != value or (switching and key in _RESET_BY_SCHEDULER_SWITCH):
                entry["writes"].append([key, value])
        entry["changed"] = bool(entry["writes"])
        devices[name] = entry
    problems = [
        unavailable_message(", ".join(names), scheduler, list(avail)) for avail, names in unavailable.items()
    ] + problems
    if problems:
        raise BlockdevError(
            f"{problems[0]}; nothing was changed"
            if len(problems) == 1
            else f"{len(problems)} problems, nothing was changed: {' | '.join(problems)}"
        )
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
    return {
        "devices": devices,
        "warnings": warnings,
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


# --------------------------------------------------------------------------- udev rules

_CLASS_MATCH = {
    "nvme": ['KERNEL=="nvme[0-9]*n[0-9]*"'],
    "virtio": ['KERNEL=="vd[a-z]*"'],
    "rotational": ['ATTR{queue/rotational}=="1"'],
    "nonrotational": ['ATTR{queue/rotational}=="0"'],
    "all": [],
}


def _virtual_exclusion(pattern=None):
    kinds = [k for k in VIRTUAL_KINDS if pattern is None or not _glob_names_kind(pattern, k)]
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
    excl = ['KERNEL!="{}"'.format("|".join(_strip_dev(p) for p in exclude))] if exclude else []
    base = ['ACTION=="add|change"', 'SUBSYSTEM=="block"', 'ENV{DEVTYPE}=="disk"']
    rules = []
    for raw in devices or []:
        pattern = _strip_dev(raw)
        matches = [f'KERNEL=="{pattern}"']
        if _is_glob(pattern):
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


# --------------------------------------------------------------------------- sysfs I/O


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
