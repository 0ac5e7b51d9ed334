"""A fake /sys/block for the disk layer's unit tests: devices laid out as the kernel does, and a fake block layer."""

from __future__ import annotations

import errno
import os

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd

MQ = "[none] mq-deadline kyber bfq\n"
MQ_DEADLINE_PARAMS = {
    "async_depth": "256",
    "fifo_batch": "16",
    "front_merges": "1",
    "prio_aging_expire": "10000",
    "read_expire": "500",
    "write_expire": "5000",
    "writes_starved": "2",
}


def make_device(root, name, scheduler=MQ, rotational="0", queue=None, iosched=None, model=None, driver=None):
    """Create /sys/block/<name> the way the kernel lays it out (scheduler=None: no scheduler file)."""
    qdir = root / "block" / name / "queue"
    qdir.mkdir(parents=True)
    if scheduler is not None:
        (qdir / "scheduler").write_text(scheduler)
    if rotational is not None:
        (qdir / "rotational").write_text(rotational + "\n")
    for key, value in (queue or {"read_ahead_kb": "128", "nr_requests": "256", "rq_affinity": "1"}).items():
        (qdir / key).write_text(value + "\n")
    if iosched:
        (qdir / "iosched").mkdir()
        for key, value in iosched.items():
            (qdir / "iosched" / key).write_text(value + "\n")
    (root / "block" / name / "removable").write_text("0\n")
    (root / "block" / name / "size").write_text("2048\n")
    if model or driver:
        dev = root / "devices" / name
        dev.mkdir(parents=True)
        if model:
            (dev / "model").write_text(model + "\n")
        if driver:
            drv = root / "bus" / "drivers" / driver
            drv.mkdir(parents=True)
            os.symlink(drv, dev / "driver")
        os.symlink(dev, root / "block" / name / "device")
    return qdir


class FakeKernel:
    """Writer that behaves like the block layer for queue/scheduler: EINVAL for unknown names."""

    def __init__(self, fail_on=None):
        self.writes = []
        self.fail_on = fail_on

    def __call__(self, path, value):
        if self.fail_on and path.endswith(self.fail_on[0]) and value == self.fail_on[1]:
            raise OSError(errno.EINVAL, "Invalid argument")
        self.writes.append((path, value))
        if path.endswith("/queue/scheduler"):
            with open(path) as handle:
                _active, available = bd.parse_scheduler(handle.read())
            if value not in available:
                raise OSError(errno.EINVAL, "Invalid argument")
            with open(path, "w") as handle:
                handle.write(" ".join(f"[{s}]" if s == value else s for s in available) + "\n")
            iosched = os.path.join(os.path.dirname(path), "iosched")
            if os.path.isdir(iosched):
                for f in os.listdir(iosched):
                    os.unlink(os.path.join(iosched, f))
            else:
                os.mkdir(iosched)
            if value == "mq-deadline":
                for key, default in MQ_DEADLINE_PARAMS.items():
                    with open(os.path.join(iosched, key), "w") as handle:
                        handle.write(default + "\n")
            return
        with open(path, "w") as handle:
            handle.write(value + "\n")


def kvm_guest(root):
    """Lay out a KVM guest with NVMe, virtio, a SATA disk, a loop device, zram and device-mapper under root."""
    make_device(root, "nvme0n1", "[none] mq-deadline\n", "0", model="Samsung SSD 980 PRO 1TB")
    make_device(root, "nvme1n1", "[none] mq-deadline\n", "0")
    make_device(root, "vda", "none [mq-deadline] kyber bfq\n", "1", iosched=MQ_DEADLINE_PARAMS, driver="virtio_blk")
    make_device(root, "sda", "mq-deadline kyber [bfq] none\n", "1", model="ST4000DM004-2CV1")
    make_device(root, "loop0", MQ, "0")
    make_device(root, "zram0", None, "0")
    make_device(root, "dm-0", "none\n", "0")
    return root
