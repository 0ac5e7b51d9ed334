# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runners behind the io_scheduler and io_scheduler_info modules.

The modules only declare their interface; these functions read sysfs, ask
``_blockdev`` for a plan, and apply it once unless in check mode.
"""

from __future__ import annotations

import os
import tempfile

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd

ARGUMENT_SPEC = dict(
    devices=dict(type="list", elements="str"),
    device_class=dict(type="str", choices=list(bd.DEVICE_CLASSES)),
    exclude=dict(type="list", elements="str", default=[]),
    scheduler=dict(type="str"),
    queue=dict(type="dict", default={}),
    persist=dict(type="bool", default=False),
    rules_path=dict(type="path", default=bd.DEFAULT_RULES_PATH),
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


def _write_rules(module, path, content):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".onmetal-io-scheduler.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_io_scheduler(module):
    """Entry point of onmetal.faas.io_scheduler."""
    p = module.params
    sysfs_root = p["sysfs_root"]
    result = dict(changed=False, runtime_changed=False, rules_changed=False, devices={}, selected=[], sysfs_writes=0)
    try:
        settings = bd.normalize_queue(p["queue"], page_size_kb=_page_size_kb())
        if not p["scheduler"] and not settings:
            module.fail_json(msg="nothing to do: set scheduler, queue, or both", **result)
        state = bd.read_block_devices(sysfs_root, queue_keys=[k[len("queue/") :] for k in settings])
        selected = bd.select_devices(state, p["devices"], p["device_class"], p["exclude"], sysfs_root=sysfs_root)

        if p["scheduler"] and p["load_module"]:
            for kmod in _missing_kmods(state, selected, p["scheduler"]):
                if module.check_mode:
                    module.warn(f"check mode: would run 'modprobe {kmod}'; devices are planned as they are now")
                    continue
                modprobe = module.get_bin_path("modprobe", required=True)
                rc, _out, err = module.run_command([modprobe, kmod], environ_update=dict(LANG="C", LC_ALL="C"))
                if rc != 0:
                    module.fail_json(
                        msg=f"'modprobe {kmod}' failed (rc={rc}): {err.strip()}; install the kernel's extra modules "
                        "package or pick a scheduler the devices offer",
                        **result,
                    )
                result["loaded_modules"] = result.get("loaded_modules", []) + [kmod]
                state = bd.read_block_devices(sysfs_root, queue_keys=[k[len("queue/") :] for k in settings])

        plan = bd.plan_changes(state, selected, p["scheduler"], settings, sysfs_root=sysfs_root)
        rules = None
        old_rules = None
        if p["persist"]:
            rules = bd.render_rules(
                p["devices"], p["device_class"], p["exclude"], p["scheduler"], settings, bd.host_flavor(state)
            )
            old_rules = _read_text(p["rules_path"])
        if not module.check_mode and plan["changed"]:
            bd.check_writable(plan, sysfs_root)
    except bd.BlockdevError as exc:
        module.fail_json(msg=str(exc), **result)

    for warning in plan["warnings"]:
        module.warn(warning)

    result["selected"] = selected
    result["runtime_changed"] = plan["changed"]
    result["rules_changed"] = rules is not None and rules != old_rules
    result["changed"] = result["runtime_changed"] or result["rules_changed"]
    if rules is not None:
        result["rules_path"] = p["rules_path"]
        result["rules"] = rules

    if not module.check_mode:
        if plan["changed"]:
            try:
                applied = bd.apply_plan(plan, sysfs_root)
            except bd.BlockdevError as exc:
                restored = getattr(exc, "state_restored", False)
                result.update(changed=not restored, runtime_changed=not restored, rules_changed=False)
                module.fail_json(msg=str(exc), **result)
            result["sysfs_writes"] = applied["writes"]
            for message in applied["adjusted"]:
                module.warn(message)
        if result["rules_changed"]:
            _write_rules(module, p["rules_path"], rules)

    for name, entry in plan["devices"].items():
        dev = state[name]
        result["devices"][name] = dict(
            previous=entry["previous"],
            current=entry["current"],
            available=entry["available"],
            changed=entry["changed"],
            queue=entry["queue"],
            kind=dev["kind"],
            rotational=dev["rotational"],
        )

    if module._diff:
        diff = bd.plan_diff(plan, sysfs_root)
        if result["rules_changed"]:
            diff.append(
                dict(
                    before_header=p["rules_path"] if old_rules is not None else "{} (absent)".format(p["rules_path"]),
                    after_header=p["rules_path"],
                    before=old_rules or "",
                    after=rules,
                )
            )
        result["diff"] = diff
    module.exit_json(**result)


def run_io_scheduler_info(module):
    """Entry point of onmetal.faas.io_scheduler_info."""
    p = module.params
    try:
        state = bd.read_block_devices(p["sysfs_root"])
        names = sorted(state)
        if p["devices"]:
            names = bd.select_devices(state, p["devices"], sysfs_root=p["sysfs_root"])
    except bd.BlockdevError as exc:
        module.fail_json(msg=str(exc))
    devices = {}
    for name in names:
        dev = dict(state[name])
        dev.pop("name")
        dev["queue_files"] = dev.pop("queue_files")
        devices[name] = dev
    module.exit_json(changed=False, devices=devices, block_layer=bd.host_flavor(state))
