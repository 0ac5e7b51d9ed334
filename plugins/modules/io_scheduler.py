#!/usr/bin/python
# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: io_scheduler
short_description: Set the I/O scheduler and queue tunables of block devices, now and persistently
version_added: 0.1.0
description:
  - Selects block devices by name, wildcard or device class, sets their I/O scheduler and optional
    queue tunables in C(/sys/block/<dev>/queue), and optionally writes a udev rules file that applies
    the same settings whenever a matching device is added or changes (hot-plug, reboot).
  - Every selected device is validated before anything is written, so a scheduler that one device
    does not offer leaves all devices as they were. If the kernel still rejects a write, the writes
    already done are rolled back.
  - Legacy scheduler names are accepted and mapped with a warning on blk-mq kernels (every kernel
    >= 5.0) - C(noop) becomes C(none), C(deadline) becomes C(mq-deadline), C(cfq) becomes C(bfq).
    On a legacy single-queue kernel the blk-mq names are mapped the other way.
  - Only values that differ are written; the module returns how many sysfs writes it made.
  - The kernel command line option C(elevator=) has no effect on blk-mq kernels; use this module
    with O(persist=true) instead.
author:
  - onmetal.faas developers (@onmetal)
extends_documentation_fragment:
  - onmetal.faas.sysfs
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: Returns before and after text for each changed device and for the rules file.
    support: full
  platform:
    description: Linux hosts with sysfs.
    support: full
    platforms: posix
options:
  devices:
    description:
      - Kernel names of block devices (V(nvme0n1), V(/dev/sda) is accepted too) or shell-style
        wildcards (V(nvme*), V(sd[a-d])).
      - A literal name must exist; a wildcard may match nothing.
      - loop, ram, zram and device-mapper devices are only selected when named, that is literally or
        by a wildcard that starts with their prefix (V(loop*)), never by V(*).
      - At least one of O(devices) and O(device_class) is required; with both, the union is selected.
    type: list
    elements: str
  device_class:
    description:
      - Select devices by class. V(nvme) are NVMe namespaces (V(nvme0n1)), V(virtio) are virtio-blk
        disks (V(vda)), V(rotational) and V(nonrotational) go by C(queue/rotational), V(all) is every
        device. loop, ram, zram and device-mapper devices are never selected by class.
    type: str
    choices: [nvme, virtio, rotational, nonrotational, all]
  exclude:
    description:
      - Names or wildcards removed from the selection, also in the udev rules (as C(KERNEL!=) matches).
      - Use it to keep a class-wide setting away from devices that get their own.
    type: list
    elements: str
    default: []
  scheduler:
    description:
      - The scheduler to activate, for example V(none), V(mq-deadline), V(bfq), V(kyber).
      - Must be offered by every selected device (after mapping legacy names), otherwise the module
        fails naming the device and the schedulers it offers.
      - Omit it to set only O(queue) tunables.
    type: str
  queue:
    description:
      - Queue tunables to set in the same call, as file names under C(/sys/block/<dev>/queue), such as
        C(read_ahead_kb), C(nr_requests) and C(rq_affinity).
      - "Scheduler parameters go in a nested C(iosched) dictionary (C(iosched: {read_expire: 100})) or as
        C(iosched/read_expire). They are checked against what the target scheduler offers."
      - Values are integers or plain words; C(read_ahead_kb) must be a multiple of the page size, since
        the kernel rounds it down and the module would otherwise report a change on every run.
    type: dict
    default: {}
  persist:
    description:
      - Also write O(rules_path), a udev rules file that applies the same settings on C(add) and
        C(change) events, matched on the kernel name pattern (plus C(queue/rotational) for a class
        selection). The file is written atomically and only when its content differs.
      - With V(false) an existing rules file is left alone.
    type: bool
    default: false
  rules_path:
    description:
      - Path of the udev rules file written when O(persist=true).
      - Rules files are applied in lexical order of their names, so a later file wins for the same device.
    type: path
    default: /etc/udev/rules.d/60-onmetal-io-scheduler.rules
  load_module:
    description:
      - When the scheduler is missing but is usually built as a module (C(bfq), C(kyber), C(mq-deadline)),
        run C(modprobe) for it first. In check mode the module is not loaded and a warning says so.
    type: bool
    default: false
notes:
  - Runtime and persistent state are reported separately as RV(runtime_changed) and RV(rules_changed).
  - No udev reload is needed; systemd-udevd notices changed rules files on the next event.
seealso:
  - module: onmetal.faas.io_scheduler_info
  - name: Block layer documentation of queue sysfs files
    description: The meaning of every file under C(/sys/block/<dev>/queue).
    link: https://docs.kernel.org/block/queue-sysfs.html
"""

EXAMPLES = r"""
- name: NVMe and virtio disks use no scheduler, also after hot-plug and reboot
  onmetal.faas.io_scheduler:
    device_class: nvme
    scheduler: none
    persist: true
    rules_path: /etc/udev/rules.d/60-onmetal-io-scheduler-nvme.rules

- name: Rotational disks use mq-deadline with a shorter read deadline and more read-ahead
  onmetal.faas.io_scheduler:
    device_class: rotational
    scheduler: mq-deadline
    queue:
      read_ahead_kb: 1024
      iosched:
        read_expire: 200  # a multiple of the kernel tick (4 ms at CONFIG_HZ=250), so it reads back unchanged
    persist: true
    rules_path: /etc/udev/rules.d/60-onmetal-io-scheduler-rotational.rules

- name: Legacy name from an old playbook; mapped to 'none' with a warning
  onmetal.faas.io_scheduler:
    devices: [vda, vdb]
    scheduler: noop

- name: Only read-ahead on two named disks, leaving their scheduler as it is
  onmetal.faas.io_scheduler:
    devices: [sda, sdb]
    queue:
      read_ahead_kb: 4096
"""

RETURN = r"""
devices:
  description: Per selected device, the scheduler before and after and the tunables touched.
  returned: always
  type: dict
  sample:
    vda:
      previous: mq-deadline
      current: none
      available: [none, mq-deadline, kyber, bfq]
      changed: true
      kind: virtio
      rotational: true
      queue:
        read_ahead_kb: {before: "128", after: "256"}
selected:
  description: Names of the selected devices, sorted.
  returned: always
  type: list
  elements: str
  sample: [vda, vdb]
runtime_changed:
  description: Whether sysfs was (or in check mode would be) written.
  returned: always
  type: bool
rules_changed:
  description: Whether the rules file was (or in check mode would be) written.
  returned: always
  type: bool
sysfs_writes:
  description: Number of sysfs files written; 0 in check mode and when everything already matched.
  returned: always
  type: int
  sample: 2
rules_path:
  description: Path of the rules file.
  returned: when O(persist=true)
  type: str
  sample: /etc/udev/rules.d/60-onmetal-io-scheduler.rules
rules:
  description: Content of the rules file as it is (or would be) after the run.
  returned: when O(persist=true)
  type: str
  sample: |
    # device_class: nvme
    ACTION=="add|change", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNEL=="nvme[0-9]*n[0-9]*", \
    ATTR{queue/scheduler}="none"
loaded_modules:
  description: Kernel modules loaded because of O(load_module=true).
  returned: when a module was loaded
  type: list
  elements: str
  sample: [bfq]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._io_scheduler import (  # noqa: E402
    ARGUMENT_SPEC,
    run_io_scheduler,
)


def _modprobe(module):
    """The kernel module loader given to the logic: runs modprobe, returns (rc, stderr)."""

    def load(kmod):
        modprobe = module.get_bin_path("modprobe", required=True)
        rc, _out, err = module.run_command([modprobe, kmod], environ_update=dict(LANG="C", LC_ALL="C"))
        return rc, err

    return load


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_one_of=[("devices", "device_class")],
        supports_check_mode=True,
    )
    try:
        result = run_io_scheduler(
            module.params,
            check_mode=module.check_mode,
            diff=module._diff,
            modprobe=_modprobe(module),
            warn=module.warn,
            move=module.atomic_move,
        )
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
