"""Unit tests of the pure planner in _blockdev_plan: queue settings, scheduler resolution, plans and diffs."""

from __future__ import annotations

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_plan as plans
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs as sysfs
from ansible_collections.onmetal.faas.tests.unit.plugins.module_utils._sysfs_tree import kvm_guest, make_device


@pytest.fixture
def host(tmp_path):
    """A KVM guest with NVMe, virtio, a SATA disk, a loop device, zram and device-mapper."""
    return kvm_guest(tmp_path)


# --------------------------------------------------------------------------- scheduler resolution


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        ("none", ["none", "mq-deadline"], ("none", None)),
        ("noop", ["none", "mq-deadline", "kyber", "bfq"], ("none", "noop")),
        ("deadline", ["none", "mq-deadline"], ("mq-deadline", "deadline")),
        ("cfq", ["none", "mq-deadline", "bfq"], ("bfq", "cfq")),
        ("none", ["noop", "deadline", "cfq"], ("noop", "none")),  # legacy kernel: other way round
        ("mq-deadline", ["noop", "deadline", "cfq"], ("deadline", "mq-deadline")),
        ("deadline", ["noop", "deadline", "cfq"], ("deadline", None)),
    ],
)
def test_resolve_scheduler(requested, available, expected):
    assert plans.resolve_scheduler("dev0", requested, available) == expected


@pytest.mark.parametrize(
    ("requested", "available", "fragments"),
    [
        ("foo", ["none", "mq-deadline"], ["scheduler 'foo' is not offered by d0; available: none, mq-deadline"]),
        ("bfq", ["none", "mq-deadline"], ["'bfq' is usually a kernel module", "modprobe bfq", "load_module: true"]),
        ("kyber", ["none", "mq-deadline"], ["modprobe kyber-iosched"]),
        ("cfq", ["none", "mq-deadline"], ["'cfq' is called 'bfq' on blk-mq kernels", "modprobe bfq"]),
        ("noop", ["mq-deadline"], ["available: mq-deadline; on blk-mq kernels use 'none'"]),
        ("kyber", ["noop", "deadline", "cfq"], ["available: noop, deadline, cfq; choose one of the available"]),
        ("none", [], ["d0 has no I/O scheduler (no queue/scheduler file"]),
    ],
)
def test_unavailable_messages(requested, available, fragments):
    with pytest.raises(bd.BlockdevError) as exc:
        plans.resolve_scheduler("d0", requested, available)
    for fragment in fragments:
        assert fragment in str(exc.value)


# --------------------------------------------------------------------------- queue settings


def test_normalize_queue_orders_queue_before_iosched():
    out = plans.normalize_queue(
        {"iosched": {"write_expire": 3000, "read_expire": "100"}, "rq_affinity": 2, "nomerges": 0}
    )
    assert list(out.items()) == [
        ("queue/nomerges", "0"),
        ("queue/rq_affinity", "2"),
        ("queue/iosched/read_expire", "100"),
        ("queue/iosched/write_expire", "3000"),
    ]


def test_normalize_queue_slash_form_and_bool():
    assert plans.normalize_queue({"iosched/low_latency": False, "read_ahead_kb": 4096.0}) == {
        "queue/read_ahead_kb": "4096",
        "queue/iosched/low_latency": "0",
    }


@pytest.mark.parametrize(
    ("queue", "match"),
    [
        ({"rq_affinity": 3}, r"'rq_affinity' has value '3'; expected an integer from 0 to 2"),
        ({"nr_requests": 0}, r"'nr_requests' has value '0'; expected an integer >= 1"),
        ({"read_ahead_kb": "lots"}, r"'read_ahead_kb' has value 'lots'; expected an integer >= 0"),
        ({"read_ahead_kb": 10}, r"read_ahead_kb 10 is not a multiple of the page size \(4 KiB\).*use 8 or 12"),
        ({"scheduler": "none"}, r"set the scheduler with the 'scheduler' option"),
        ({"rotational": 0}, r"'rotational' is read-only or not meant to be set"),
        ({"wbt_lat_usec": 'x" RUN+="/bin/sh'}, r"expected an integer or a plain word"),
        ({"../../power/control": "on"}, r"is not a valid name"),
        ({"iosched": 5}, r"queue.iosched must be a dictionary"),
    ],
)
def test_normalize_queue_errors(queue, match):
    with pytest.raises(bd.BlockdevError, match=match):
        plans.normalize_queue(queue)


# --------------------------------------------------------------------------- planning


def test_plan_no_change_when_values_match(host):
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["nvme0n1", "nvme1n1"], "none", {"queue/read_ahead_kb": "128"})
    assert plan["changed"] is False
    assert plan["writes"] == 0
    assert plan["devices"]["nvme0n1"]["queue"] == {"read_ahead_kb": {"before": "128", "after": "128"}}


def test_plan_switch_writes_scheduler_then_tunables(host):
    state = sysfs.read_block_devices(str(host))
    settings = plans.normalize_queue({"nr_requests": 256, "read_ahead_kb": 512, "iosched": {"read_expire": 100}})
    plan = plans.plan_changes(state, ["sda"], "mq-deadline", settings)
    entry = plan["devices"]["sda"]
    assert entry["previous"] == "bfq" and entry["current"] == "mq-deadline" and entry["changed"] is True
    # nr_requests already 256 but is reset by the switch, so it is written after it
    assert entry["writes"] == [
        ["queue/scheduler", "mq-deadline"],
        ["queue/nr_requests", "256"],
        ["queue/read_ahead_kb", "512"],
        ["queue/iosched/read_expire", "100"],
    ]
    assert entry["queue"]["iosched/read_expire"] == {"before": None, "after": "100"}


def test_plan_iosched_without_switch_only_writes_difference(host):
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["vda"], "mq-deadline", {"queue/iosched/read_expire": "500"})
    assert plan["changed"] is False
    plan = plans.plan_changes(state, ["vda"], None, {"queue/iosched/read_expire": "250"})
    assert plan["devices"]["vda"]["writes"] == [["queue/iosched/read_expire", "250"]]


def test_plan_legacy_name_warns_once_for_all_devices(host):
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["nvme0n1", "nvme1n1", "vda"], "noop")
    assert [d["current"] for d in plan["devices"].values()] == ["none", "none", "none"]
    assert plan["writes"] == 1  # only vda differs
    assert plan["warnings"] == [
        "scheduler 'noop' was mapped to 'none' on nvme0n1, nvme1n1, vda: the blk-mq block layer "
        "(every kernel >= 5.0) has no 'noop'; write 'none' to silence this warning"
    ]


def test_plan_legacy_kernel_maps_mq_names(tmp_path):
    make_device(tmp_path, "sda", "noop deadline [cfq]\n", "1")
    state = sysfs.read_block_devices(str(tmp_path))
    plan = plans.plan_changes(state, ["sda"], "mq-deadline")
    assert plan["devices"]["sda"]["writes"] == [["queue/scheduler", "deadline"]]
    assert "legacy single-queue block layer" in plan["warnings"][0]
    assert bd.host_flavor(state) == "legacy"


def test_plan_validates_every_device_before_anything(host):
    state = sysfs.read_block_devices(str(host))
    with pytest.raises(bd.BlockdevError) as exc:
        plans.plan_changes(state, ["nvme0n1", "nvme1n1", "sda", "vda", "zram0"], "kyber", {"queue/bogus": "1"})
    msg = str(exc.value)
    assert msg.startswith("4 problems, nothing was changed: ")
    assert "scheduler 'kyber' is not offered by nvme0n1, nvme1n1; available: none, mq-deadline" in msg
    assert "modprobe kyber-iosched" in msg
    assert "zram0 has no I/O scheduler" in msg
    assert "queue tunable 'bogus' is not offered by sda; available: nr_requests, read_ahead_kb, rq_affinity" in msg
    assert "queue tunable 'bogus' is not offered by vda" in msg


def test_plan_iosched_param_checks(host):
    state = sysfs.read_block_devices(str(host))
    with pytest.raises(bd.BlockdevError, match=r"'read_expire' is not known for scheduler 'kyber' \(set on vda\)"):
        plans.plan_changes(state, ["vda"], "kyber", {"queue/iosched/read_expire": "100"})
    with pytest.raises(bd.BlockdevError, match=r"'slice_idle' is not offered by scheduler 'mq-deadline' on vda"):
        plans.plan_changes(state, ["vda"], None, {"queue/iosched/slice_idle": "0"})
    with pytest.raises(bd.BlockdevError, match=r"'none' has no parameters"):
        plans.plan_changes(state, ["vda"], "none", {"queue/iosched/read_expire": "100"})


def test_plan_diff(host):
    state = sysfs.read_block_devices(str(host))
    plan = plans.plan_changes(state, ["nvme0n1", "vda"], "none", {"queue/read_ahead_kb": "256"}, sysfs_root=str(host))
    diff = plans.plan_diff(plan, str(host))
    assert [d["before_header"] for d in diff] == [
        f"{host}/block/nvme0n1/queue",
        f"{host}/block/vda/queue",
    ]
    assert diff[1]["before"] == "scheduler: mq-deadline\nread_ahead_kb: 128\n"
    assert diff[1]["after"] == "scheduler: none\nread_ahead_kb: 256\n"
