# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Block devices as onmetal.faas sees them: scheduler names, kinds, classes and selection.

The disk layer is split by what each file does; all but the last are plain data in, plain data out:

* ``_blockdev`` (this file): the vocabulary -- scheduler names and their legacy/blk-mq mapping,
  the kind and classes of a device from its kernel name, and which devices a selection picks.
* ``_blockdev_plan``: the planner -- desired queue settings, and what applying them would change.
* ``_blockdev_udev``: the persistent side -- the udev rules text for the same selection.
* ``_blockdev_sysfs``: the only I/O -- reading ``/sys/block`` and applying a plan to it, under a
  sysfs root passed in, so tests point it at a fake tree.

Vocabulary:

* *state*: ``{name: device}`` as returned by ``_blockdev_sysfs.read_block_devices``.
* *settings*: the normalized desired values, ``{"queue/scheduler": "none",
  "queue/read_ahead_kb": "256", "queue/iosched/read_expire": "100"}`` -- keys are paths relative
  to ``/sys/block/<dev>/``, which is also what udev's ``ATTR{...}`` takes.
* *plan*: per device, what would be written and what it looks like before and after.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections import namedtuple

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

# How a kind that is recognised by its whole kernel name is written: ``regex`` decides the kind,
# ``udev`` is the same set as a udev KERNEL== glob (the class rules), ``wildcard`` is the
# shell-style wildcard that keeps the kind out of a broader class selection.
NamedKind = namedtuple("NamedKind", ("regex", "udev", "wildcard"))

# Kinds recognised by the whole kernel name, in this order. They are also device classes, and when
# tuning per class they belong to their own class only: the rotational and nonrotational classes never
# take them, whether or not their own class is tuned (QEMU reports virtio disks as rotational). See
# class_excludes, which decides this for the disk_class_excludes filter and so for the disk_tuning role.
NAMED_KINDS = {
    "nvme": NamedKind(re.compile(r"^nvme\d+n\d+$"), "nvme[0-9]*n[0-9]*", "nvme*"),
    "virtio": NamedKind(re.compile(r"^vd[a-z]+$"), "vd[a-z]*", "vd*"),
}

# Kinds recognised by their kernel name prefix (after NAMED_KINDS), in the order they are tried.
_PREFIX_KINDS = (("scsi", "sd"), ("mmc", "mmcblk"), ("md", "md"), ("xen", "xvd"), ("optical", "sr"))

_GLOB_CHARS = "*?["


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
    for kind, named in NAMED_KINDS.items():
        if named.regex.match(name):
            return kind
    for kind, prefix in _PREFIX_KINDS:
        if name.startswith(prefix):
            return kind
    return "other"


def device_classes(device):
    """Classes (as used by ``device_class``) a device belongs to; empty for virtual kinds."""
    if device["kind"] in VIRTUAL_KINDS:
        return []
    classes = []
    if device["kind"] in NAMED_KINDS:
        classes.append(device["kind"])
    if device.get("rotational") is True:
        classes.append("rotational")
    elif device.get("rotational") is False:
        classes.append("nonrotational")
    classes.append("all")
    return classes


def tuning_class(name, rotational):
    """The one class a device is tuned by when each class gets its own scheduler.

    A named kind (nvme, virtio) belongs to its own class only, so a device of that kind is left
    alone when its class is not tuned (the same rule as :func:`class_excludes`); ``rotational`` is
    True, False or None (unknown, counted as nonrotational). Virtual kinds (VIRTUAL_KINDS) get a
    class too; leaving them out is the caller's choice.
    """
    kind = device_kind(name)
    if kind in NAMED_KINDS:
        return kind
    return "rotational" if rotational is True else "nonrotational"


def class_excludes(device_class, tuned_classes=()):
    """Wildcards a ``device_class`` selection excludes so that a device is tuned by one class only.

    This is the class precedence of per-class tuning, in one place:

    * A named kind (NAMED_KINDS: NVMe namespaces, virtio disks) is tuned by its own class only.
      ``rotational`` and ``nonrotational`` always exclude every named kind, whether or not its
      class is in ``tuned_classes``, so a rotational virtio disk gets the virtio scheduler when
      the virtio class is tuned and is left alone when it is not (it never falls back to the
      rotational one). Naming such a device in ``devices`` still selects it.
    * ``all`` is every non-virtual device (the io_scheduler module's ``device_class``): it only
      leaves out the named kinds whose own class is tuned, which win over it.
    * A named kind's own class excludes nothing.
    """
    if device_class in NAMED_KINDS:
        return []
    if device_class == "all":
        return [named.wildcard for kind, named in NAMED_KINDS.items() if kind in tuned_classes]
    return [named.wildcard for named in NAMED_KINDS.values()]


def is_glob(pattern):
    """True if ``pattern`` is a shell-style wildcard rather than a literal name."""
    return any(c in pattern for c in _GLOB_CHARS)


def _glob_prefix(pattern):
    idx = min([pattern.find(c) for c in _GLOB_CHARS if c in pattern] or [len(pattern)])
    return pattern[:idx]


def glob_names_kind(pattern, kind):
    """True if a wildcard names a virtual kind explicitly (``loop*`` does, ``*`` does not)."""
    return _glob_prefix(pattern).startswith(VIRTUAL_KINDS[kind])


def strip_dev(name):
    """``/dev/sda`` -> ``sda``; other names unchanged."""
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
        pattern = strip_dev(raw)
        if is_glob(pattern):
            for name, dev in state.items():
                if not fnmatch.fnmatchcase(name, pattern):
                    continue
                if dev["kind"] in VIRTUAL_KINDS and not glob_names_kind(pattern, dev["kind"]):
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
        pattern = strip_dev(raw)
        selected = {n for n in selected if not fnmatch.fnmatchcase(n, pattern)}
    return sorted(selected)
