"""Unit tests of the device vocabulary in _blockdev: scheduler names, kinds, classes and selection."""

from __future__ import annotations

import fnmatch

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs as sysfs
from ansible_collections.onmetal.faas.tests.unit.plugins.module_utils._sysfs_tree import kvm_guest


@pytest.fixture
def host(tmp_path):
    """A KVM guest with NVMe, virtio, a SATA disk, a loop device, zram and device-mapper."""
    return kvm_guest(tmp_path)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "active", "available"),
    [
        ("[none] mq-deadline kyber bfq\n", "none", ["none", "mq-deadline", "kyber", "bfq"]),
        ("none [mq-deadline] kyber bfq", "mq-deadline", ["none", "mq-deadline", "kyber", "bfq"]),
        ("[none] mq-deadline", "none", ["none", "mq-deadline"]),  # NVMe, kyber/bfq not loaded
        ("noop deadline [cfq] \n", "cfq", ["noop", "deadline", "cfq"]),  # legacy single-queue kernel
        ("noop [deadline] cfq", "deadline", ["noop", "deadline", "cfq"]),
        ("none\n", "none", ["none"]),  # device-mapper / md: unbracketed, nothing to choose
        ("", None, []),
        (None, None, []),
    ],
)
def test_parse_scheduler(text, active, available):
    assert bd.parse_scheduler(text) == (active, available)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("nvme0n1", "nvme"),
        ("nvme12n3", "nvme"),
        ("vda", "virtio"),
        ("vdaa", "virtio"),
        ("sda", "scsi"),
        ("mmcblk0", "mmc"),
        ("loop7", "loop"),
        ("ram0", "ram"),
        ("zram0", "zram"),
        ("dm-3", "dm"),
        ("md127", "md"),
        ("xvda", "xen"),
        ("sr0", "optical"),
        ("nbd0", "other"),
    ],
)
def test_device_kind(name, kind):
    assert bd.device_kind(name) == kind


@pytest.mark.parametrize("name", ["nvme0n1", "nvme12n3", "vda", "vdaa", "sda", "nvme0", "vd1", "xvda", "md127"])
def test_named_kind_forms_agree(name):
    """The regex that decides a named kind, its udev glob and its wildcard all cover the same kernel names."""
    for kind, named in bd.NAMED_KINDS.items():
        is_kind = bd.device_kind(name) == kind
        assert bool(named.regex.match(name)) == is_kind
        assert fnmatch.fnmatchcase(name, named.udev) == is_kind
        if is_kind:
            assert fnmatch.fnmatchcase(name, named.wildcard)


@pytest.mark.parametrize(
    ("available", "flavor"),
    [(["none", "mq-deadline"], "blk-mq"), (["noop", "deadline", "cfq"], "legacy"), ([], None), (["foo"], None)],
)
def test_scheduler_flavor(available, flavor):
    assert bd.scheduler_flavor(available) == flavor


@pytest.mark.parametrize(
    ("name", "flavor", "expected"),
    [
        ("noop", "blk-mq", "none"),
        ("deadline", "blk-mq", "mq-deadline"),
        ("cfq", "blk-mq", "bfq"),
        ("kyber", "blk-mq", "kyber"),
        ("none", "legacy", "noop"),
        ("mq-deadline", "legacy", "deadline"),
        ("bfq", "legacy", "cfq"),
        ("noop", "legacy", "noop"),
    ],
)
def test_canonical_scheduler(name, flavor, expected):
    assert bd.canonical_scheduler(name, flavor) == expected


# --------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("devices", "device_class", "exclude", "expected"),
    [
        (None, "nvme", None, ["nvme0n1", "nvme1n1"]),
        (None, "virtio", None, ["vda"]),
        (None, "rotational", None, ["sda", "vda"]),
        (None, "nonrotational", None, ["nvme0n1", "nvme1n1"]),  # loop0, zram0, dm-0 are skipped
        (None, "all", None, ["nvme0n1", "nvme1n1", "sda", "vda"]),
        (["*"], None, None, ["nvme0n1", "nvme1n1", "sda", "vda"]),  # "*" does not name loop/zram/dm
        (["loop0"], None, None, ["loop0"]),  # named: included
        (["loop*"], None, None, ["loop0"]),  # wildcard naming the kind: included
        (["l*"], None, None, []),  # wildcard not naming the kind: skipped
        (["dm-*", "zram0"], None, None, ["dm-0", "zram0"]),
        (["/dev/sda"], None, None, ["sda"]),
        (["nvme*"], "rotational", None, ["nvme0n1", "nvme1n1", "sda", "vda"]),
        (None, "all", ["nvme1n1", "vd*"], ["nvme0n1", "sda"]),
        (["sd[b-z]"], None, None, []),
    ],
)
def test_select_devices(host, devices, device_class, exclude, expected):
    state = sysfs.read_block_devices(str(host))
    assert bd.select_devices(state, devices, device_class, exclude) == expected


def test_select_missing_device_lists_found(host):
    state = sysfs.read_block_devices(str(host))
    with pytest.raises(bd.BlockdevError) as exc:
        bd.select_devices(state, ["nvme0n1", "sdz"], sysfs_root=str(host))
    msg = str(exc.value)
    assert f"block device 'sdz' not found in {host}/block" in msg
    assert "block devices found: dm-0, loop0, nvme0n1, nvme1n1, sda, vda, zram0" in msg


def test_select_unknown_class(host):
    with pytest.raises(bd.BlockdevError, match="device_class 'ssd' is not supported; expected one of: nvme"):
        bd.select_devices(sysfs.read_block_devices(str(host)), device_class="ssd")


@pytest.mark.parametrize(
    ("name", "rotational", "expected"),
    [
        ("nvme0n1", False, "nvme"),
        ("nvme0n1", True, "nvme"),
        ("vda", True, "virtio"),  # QEMU reports virtio disks as rotational: the name wins
        ("vdb", False, "virtio"),
        ("sda", True, "rotational"),
        ("sdb", False, "nonrotational"),
        ("mmcblk0", None, "nonrotational"),  # unknown counts as nonrotational
        ("loop0", False, "nonrotational"),
    ],
)
def test_tuning_class(name, rotational, expected):
    assert bd.tuning_class(name, rotational) == expected


@pytest.mark.parametrize(
    ("device_class", "tuned", "expected"),
    [
        ("rotational", ["nvme", "virtio", "rotational"], ["nvme*", "vd*"]),
        # The rotational classes exclude every named kind, tuned or not: a named kind whose own class
        # is not tuned is left alone, not tuned by the broader class.
        ("nonrotational", ["virtio", "nonrotational"], ["nvme*", "vd*"]),
        ("rotational", ["rotational"], ["nvme*", "vd*"]),
        ("rotational", [], ["nvme*", "vd*"]),
        # 'all' is every non-virtual disk: it leaves out only the named kinds tuned by their own class.
        ("all", ["nvme"], ["nvme*"]),
        ("all", ["nvme", "virtio"], ["nvme*", "vd*"]),
        ("all", [], []),
        ("nvme", ["nvme", "virtio"], []),
        ("virtio", ["nvme", "virtio"], []),
        ("virtio", [], []),
    ],
)
def test_class_excludes(device_class, tuned, expected):
    assert bd.class_excludes(device_class, tuned) == expected


@pytest.mark.parametrize(
    ("device_class", "tuned", "expected"),
    [
        # virtio null, rotational mq-deadline: the rotational vda stays out of the rotational class.
        ("rotational", ["nvme", "rotational"], ["sda"]),
        # nvme null, nonrotational tuned: the non-rotational NVMe namespaces stay out of it.
        ("nonrotational", ["virtio", "nonrotational"], []),
        ("rotational", ["nvme", "virtio", "rotational"], ["sda"]),
    ],
)
def test_class_excludes_leave_untuned_named_kinds_alone(host, device_class, tuned, expected):
    state = sysfs.read_block_devices(str(host))
    assert state["vda"]["rotational"] is True  # as QEMU reports virtio disks
    assert state["nvme0n1"]["rotational"] is False
    exclude = bd.class_excludes(device_class, tuned)
    assert bd.select_devices(state, device_class=device_class, exclude=exclude) == expected
