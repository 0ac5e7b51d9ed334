# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logic behind the io_scheduler and io_scheduler_info modules.

The modules only declare their interface; these functions read sysfs (``_blockdev_sysfs``), select
devices (``_blockdev``), ask the pure planner (``_blockdev_plan``, ``_blockdev_udev``) for a plan,
and apply it once unless in check mode. They follow the collection's one module contract: they take
the module parameters and injected I/O (the sysfs root is a parameter; loading a kernel module,
moving the rules file into place and emitting warnings are callables), and either return the result
dict or raise ModuleFailure carrying the partial result. Only the modules' main() talks to
AnsibleModule.
"""

from __future__ import annotations

import os
import tempfile

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_plan as plans
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs as sysfs
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_udev as udev
from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure

ARGUMENT_SPEC = dict(
    devices=dict(type="list", elements="str"),
    device_class=dict(type="str", choices=list(bd.DEVICE_CLASSES)),
    exclude=dict(type="list", elements="str", default=[]),
    scheduler=dict(type="str"),
    queue=dict(type="dict", default={}),
    persist=dict(type="bool", default=False),
    rules_path=dict(type="path", default=udev.DEFAULT_RULES_PATH),
    sysfs_root=dict(type="path", default="/sys"),
    load_module=dict(type="bool", default=False),
)

INFO_ARGUMENT_SPEC = dict(
    devices=dict(type="list", elements="str"),
    sysfs_root=dict(type="path", default="/sys"),
)


def _page_size_kb():
    try:
        return max(1, os.sysconf("SC_PAGE_SIZE") // 1024)
    except (ValueError, OSError, AttributeError):
        return 4


def _ignore(_message):
    """The default warning sink: drop the message."""


def _missing_kmods(state, selected, scheduler):
    """Kernel modules to load so that every selected device offers ``scheduler``."""
    want = bd.canonical_scheduler(scheduler, "blk-mq")
    kmod = bd.SCHEDULER_KMODS.get(want)
    if not kmod:
        return []
    for name in selected:
        avail = state[name]["available"]
        if avail and bd.scheduler_flavor(avail) == "blk-mq" and want not in avail:
            return [kmod]
    return []


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_rules(path, content, move):
    """Write ``content`` to ``path`` through a temporary file in the same directory and ``move``."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".onmetal-io-scheduler.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _queue_keys(settings):
    return [k[len("queue/") :] for k in settings]


def _load_kmods(params, state, selected, settings, io, result):
    """Load the kernel modules the scheduler needs (``load_module``); returns the state read again."""
    if not (params["scheduler"] and params["load_module"]):
        return state
    for kmod in _missing_kmods(state, selected, params["scheduler"]):
        if io.check_mode:
            io.warn(f"check mode: would run 'modprobe {kmod}'; devices are planned as they are now")
            continue
        rc, err = io.modprobe(kmod)
        if rc != 0:
            raise ModuleFailure(
                f"'modprobe {kmod}' failed (rc={rc}): {err.strip()}; install the kernel's extra modules "
                "package or pick a scheduler the devices offer",
                **result,
            )
        result["loaded_modules"] = result.get("loaded_modules", []) + [kmod]
        state = sysfs.read_block_devices(params["sysfs_root"], queue_keys=_queue_keys(settings))
    return state


def _plan(params, io, result):
    """Read, select, load modules and plan; returns ``(state, selected, plan, rules, old_rules)``."""
    sysfs_root = params["sysfs_root"]
    try:
        settings = plans.normalize_queue(params["queue"], page_size_kb=_page_size_kb())
        if not params["scheduler"] and not settings:
            raise ModuleFailure("nothing to do: set scheduler, queue, or both", **result)
        state = sysfs.read_block_devices(sysfs_root, queue_keys=_queue_keys(settings))
        selected = bd.select_devices(
            state, params["devices"], params["device_class"], params["exclude"], sysfs_root=sysfs_root
        )
        state = _load_kmods(params, state, selected, settings, io, result)
        plan = plans.plan_changes(state, selected, params["scheduler"], settings, sysfs_root=sysfs_root)
        rules = None
        old_rules = None
        if params["persist"]:
            rules = udev.render_rules(
                params["devices"],
                params["device_class"],
                params["exclude"],
                params["scheduler"],
                settings,
                bd.host_flavor(state),
            )
            old_rules = _read_text(params["rules_path"])
        if not io.check_mode and plan["changed"]:
            sysfs.check_writable(plan, sysfs_root)
    except bd.BlockdevError as exc:
        raise ModuleFailure(str(exc), **result) from exc
    return state, selected, plan, rules, old_rules


def _apply(params, plan, rules, io, result):
    """Write the plan to sysfs and the rules file, unless in check mode."""
    if io.check_mode:
        return
    if plan["changed"]:
        try:
            applied = sysfs.apply_plan(plan, params["sysfs_root"])
        except bd.BlockdevError as exc:
            restored = getattr(exc, "state_restored", False)
            result.update(changed=not restored, runtime_changed=not restored, rules_changed=False)
            raise ModuleFailure(str(exc), **result) from exc
        result["sysfs_writes"] = applied["writes"]
        for message in applied["adjusted"]:
            io.warn(message)
    if result["rules_changed"]:
        _write_rules(params["rules_path"], rules, io.move)


def _device_report(plan, state):
    """The ``devices`` return value: per planned device, before/after and what it is."""
    devices = {}
    for name, entry in plan["devices"].items():
        dev = state[name]
        devices[name] = dict(
            previous=entry["previous"],
            current=entry["current"],
            available=entry["available"],
            changed=entry["changed"],
            queue=entry["queue"],
            kind=dev["kind"],
            rotational=dev["rotational"],
        )
    return devices


def _diff(params, plan, rules, old_rules, rules_changed):
    """Diff entries: one per changed device, plus the rules file when it changes."""
    diff = plans.plan_diff(plan, params["sysfs_root"])
    if rules_changed:
        path = params["rules_path"]
        diff.append(
            dict(
                before_header=path if old_rules is not None else f"{path} (absent)",
                after_header=path,
                before=old_rules or "",
                after=rules,
            )
        )
    return diff


class _IO:
    """The I/O a run of io_scheduler is given (see run_io_scheduler)."""

    def __init__(self, check_mode, modprobe, warn, move):
        self.check_mode = check_mode
        self.modprobe = modprobe
        self.warn = warn or _ignore
        self.move = move


def run_io_scheduler(params, check_mode=False, diff=False, modprobe=None, warn=None, move=os.replace):
    """Logic of onmetal.faas.io_scheduler: returns the result dict or raises ModuleFailure.

    ``params`` are the module parameters (ARGUMENT_SPEC, defaults applied). Injected I/O:
    ``modprobe(kmod)`` loads a kernel module and returns ``(rc, stderr)`` (needed only with
    ``load_module``); ``warn(message)`` receives each warning as it arises; ``move(src, dest)``
    moves the written rules file into place atomically. Sysfs is read and written under
    ``params["sysfs_root"]``.
    """
    io = _IO(check_mode, modprobe, warn, move)
    result = dict(changed=False, runtime_changed=False, rules_changed=False, devices={}, selected=[], sysfs_writes=0)
    state, selected, plan, rules, old_rules = _plan(params, io, result)

    for warning in plan["warnings"]:
        io.warn(warning)

    result["selected"] = selected
    result["runtime_changed"] = plan["changed"]
    result["rules_changed"] = rules is not None and rules != old_rules
    result["changed"] = result["runtime_changed"] or result["rules_changed"]
    if rules is not None:
        result["rules_path"] = params["rules_path"]
        result["rules"] = rules

    _apply(params, plan, rules, io, result)
    result["devices"] = _device_report(plan, state)
    if diff:
        result["diff"] = _diff(params, plan, rules, old_rules, result["rules_changed"])
    return result


def run_io_scheduler_info(params):
    """Logic of onmetal.faas.io_scheduler_info: returns the result dict or raises ModuleFailure."""
    try:
        state = sysfs.read_block_devices(params["sysfs_root"])
        names = sorted(state)
        if params["devices"]:
            names = bd.select_devices(state, params["devices"], sysfs_root=params["sysfs_root"])
    except bd.BlockdevError as exc:
        raise ModuleFailure(str(exc)) from exc
    devices = {}
    for name in names:
        dev = dict(state[name])
        dev.pop("name")
        dev["queue_files"] = dev.pop("queue_files")
        devices[name] = dev
    return dict(changed=False, devices=devices, block_layer=bd.host_flavor(state))
