"""Unit tests of the sysfs reader and writer in _blockdev_sysfs, on a fake tree."""

from __future__ import annotations

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_plan as plans
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs as sysfs
from ansible_collections.onmetal.faas.tests.unit.plugins.module_utils._sysfs_tree import FakeKernel, kvm_guest


@pytest.fixture
def host(tmp_path):
    """A KVM guest with NVMe, virtio, a SATA disk, a loop device, zram and device-mapper."""
    return kvm_guest(tmp_path)


def test_read_block_devices(host):
    state = sysfs.read_block_devices(str(host))
    assert sorted(state) == ["dm-0", "loop0", "nvme0n1", "nvme1n1", "sda", "vda", "zram0"]
    vda = state["vda"]
    assert vda["scheduler"] == "mq-deadline"
    assert vda["available"] == ["none", "mq-deadline", "kyber", "bfq"]
    assert vda["rotational"] is True
    assert vda["kind"] == "virtio"
    assert vda["classes"] == ["virtio", "rotational", "all"]
    assert vda["driver"] == "virtio_blk"
    assert vda["iosched"]["read_expire"] == "500"
    assert vda["queue"] == {"read_ahead_kb": "128", "nr_requests": "256", "rq_affinity": "1"}
    assert vda["size_bytes"] == 2048 * 512
    assert state["nvme0n1"]["model"] == "Samsung SSD 980 PRO 1TB"
    assert state["nvme0n1"]["classes"] == ["nvme", "nonrotational", "all"]
    assert state["zram0"]["scheduler"] is None and state["zram0"]["available"] == []
    assert state["zram0"]["classes"] == []
    assert state["dm-0"]["scheduler"] == "none"
    assert state["loop0"]["classes"] == []


def test_read_block_devices_missing_root(tmp_path):
    with pytest.raises(bd.BlockdevError, match=r"block does not exist; sysfs_root must point at a mounted sysfs"):
        sysfs.read_block_devices(str(tmp_path / "nope"))


# --------------------------------------------------------------------------- applying


def test_apply_then_replan_is_idempotent(host):
    kernel = FakeKernel()
    settings = plans.normalize_queue({"read_ahead_kb": 256, "iosched": {"read_expire": 100}})
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["sda", "vda"], "mq-deadline", settings)
    assert sysfs.apply_plan(plan, str(host), writer=kernel) == {"writes": 5, "adjusted": []}
    state = sysfs.read_block_devices(str(host))
    assert state["sda"]["scheduler"] == "mq-deadline" and state["sda"]["iosched"]["read_expire"] == "100"
    assert state["vda"]["queue"]["read_ahead_kb"] == "256"
    again = plans.plan_changes(state, ["sda", "vda"], "mq-deadline", settings)
    assert again["changed"] is False and again["writes"] == 0


def test_apply_rolls_back_when_kernel_rejects(host):
    kernel = FakeKernel(fail_on=("vda/queue/read_ahead_kb", "256"))
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["nvme1n1", "sda", "vda"], "mq-deadline", {"queue/read_ahead_kb": "256"})
    with pytest.raises(bd.BlockdevError) as exc:
        sysfs.apply_plan(plan, str(host), writer=kernel)
    expected = f"writing '256' to {host}/block/vda/queue/read_ahead_kb failed: the kernel rejected the value (EINVAL)"
    assert expected in str(exc.value)
    assert "rolled back 4 earlier write(s)" in str(exc.value)
    assert exc.value.state_restored is True
    after = sysfs.read_block_devices(str(host))
    assert {n: after[n]["scheduler"] for n in ("nvme1n1", "sda", "vda")} == {
        "nvme1n1": "none",
        "sda": "bfq",
        "vda": "mq-deadline",
    }
    assert {after[n]["queue"]["read_ahead_kb"] for n in ("nvme1n1", "sda", "vda")} == {"128"}


def test_apply_detects_scheduler_not_taking_effect(host):
    def stubborn(path, value):
        pass  # the write "succeeds" but nothing changes

    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["sda"], "mq-deadline")
    with pytest.raises(bd.BlockdevError, match="wrote 'mq-deadline' to .* but the kernel reports 'bfq' as active"):
        sysfs.apply_plan(plan, str(host), writer=stubborn)


def test_check_writable_reports_read_only_sysfs(host, monkeypatch):
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["sda"], "mq-deadline")
    monkeypatch.setattr(sysfs.os, "access", lambda path, mode: False)
    with pytest.raises(bd.BlockdevError, match=r"cannot write .*/block/sda/queue/scheduler \(read-only sysfs"):
        sysfs.check_writable(plan, str(host))


def test_apply_reports_values_the_kernel_rounds(host):
    def jiffies_kernel(path, value):
        if path.endswith("read_expire"):  # HZ=250: milliseconds are rounded up to whole 4 ms ticks
            value = str(-(-int(value) // 4) * 4)
        FakeKernel()(path, value)

    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["vda"], None, {"queue/iosched/read_expire": "250", "queue/read_ahead_kb": "256"})
    applied = sysfs.apply_plan(plan, str(host), writer=jiffies_kernel)
    assert applied["writes"] == 2
    assert applied["adjusted"] == [
        "vda: wrote '250' to queue/iosched/read_expire but the kernel stores '252' (rounded to its granularity); "
        "use '252' so that the next run does not report a change again"
    ]
