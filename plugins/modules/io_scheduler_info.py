#!/usr/bin/python
# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: io_scheduler_info
short_description: Report I/O scheduler, device class and queue tunables of every block device
version_added: 0.1.0
description:
  - Reads C(/sys/block) and returns, per block device, the active and available I/O schedulers,
    whether it is rotational, its kind and the classes that M(onmetal.faas.io_scheduler) selects it by,
    model and vendor, and common queue tunables.
  - Read-only; never changes anything.
author:
  - onmetal.faas developers (@onmetal)
extends_documentation_fragment:
  - onmetal.faas.sysfs
attributes:
  check_mode:
    description: Runs normally in check mode; it only reads.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  platform:
    description: Linux hosts with sysfs.
    support: full
    platforms: posix
options:
  devices:
    description:
      - Report only these devices (kernel names or wildcards). A literal name must exist.
      - By default every block device is reported, including loop, ram, zram and device-mapper devices.
    type: list
    elements: str
seealso:
  - module: onmetal.faas.io_scheduler
"""

EXAMPLES = r"""
- name: Read block device facts
  onmetal.faas.io_scheduler_info:
  register: disks

- name: Show the NVMe namespaces that still run a scheduler
  ansible.builtin.debug:
    msg: "{{ disks.devices | dict2items | selectattr('value.kind', 'eq', 'nvme')
             | rejectattr('value.scheduler', 'eq', 'none') | map(attribute='key') }}"
"""

RETURN = r"""
block_layer:
  description: C(legacy) when no device offers blk-mq scheduler names (kernels before 5.0), else C(blk-mq).
  returned: always
  type: str
  sample: blk-mq
devices:
  description: Per block device name, what sysfs says about it.
  returned: always
  type: dict
  contains:
    scheduler:
      description: Active scheduler; null when the device has no C(queue/scheduler).
      type: str
      sample: none
    available:
      description: Schedulers the device offers; empty when it has none.
      type: list
      elements: str
      sample: [none, mq-deadline, kyber, bfq]
    rotational:
      description: Value of C(queue/rotational); null when absent.
      type: bool
    removable:
      description: Value of C(removable); null when absent.
      type: bool
    kind:
      description:
        - Kind derived from the kernel name.
        - One of nvme, virtio, scsi, mmc, md, xen, optical, loop, ram, zram, dm, other.
      type: str
      sample: nvme
    classes:
      description: Values of O(onmetal.faas.io_scheduler#module:device_class) that select this device.
      type: list
      elements: str
      sample: [nvme, nonrotational, all]
    model:
      description: C(device/model), if the device has one.
      type: str
    vendor:
      description: C(device/vendor), if the device has one.
      type: str
    driver:
      description: Name of the driver bound to the underlying device.
      type: str
      sample: virtio_blk
    size_bytes:
      description: Size in bytes.
      type: int
    queue:
      description: Common queue tunables (read_ahead_kb, nr_requests, rq_affinity, max_sectors_kb, ...) as strings.
      type: dict
      sample: {read_ahead_kb: "128", nr_requests: "256", rq_affinity: "1"}
    iosched:
      description: Parameters of the active scheduler (C(queue/iosched)), as strings.
      type: dict
      sample: {read_expire: "500", write_expire: "5000"}
    queue_files:
      description: Every file in C(queue/), which is what O(onmetal.faas.io_scheduler#module:queue) can name.
      type: list
      elements: str
  sample:
    vda:
      scheduler: mq-deadline
      available: [none, mq-deadline, kyber, bfq]
      rotational: true
      kind: virtio
      classes: [virtio, rotational, all]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._io_scheduler import (  # noqa: E402
    INFO_ARGUMENT_SPEC,
    run_io_scheduler_info,
)


def main():
    module = AnsibleModule(argument_spec=INFO_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run_io_scheduler_info(module.params)
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
