"""Tests of the mq_scheduler, recommended_scheduler and disk_class_excludes filters."""

from __future__ import annotations

import fnmatch
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.filter.io_scheduler import (
    DEFAULT_RECOMMENDATIONS,
    FilterModule,
    disk_class_excludes,
    mq_scheduler,
    recommended_scheduler,
)
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# Shaped like ansible_devices from the setup module (values are strings there).
DEVICES = {
    "nvme0n1": {"rotational": "0", "scheduler_mode": "none", "model": "Samsung SSD 980 PRO 1TB"},
    "vda": {"rotational": "1", "scheduler_mode": "mq-deadline", "vendor": "0x1af4"},
    "sda": {"rotational": "1", "scheduler_mode": "bfq", "model": "ST4000DM004-2CV1"},
    "sdb": {"rotational": "0", "scheduler_mode": "mq-deadline", "model": "Samsung SSD 870"},
    "loop0": {"rotational": "0", "scheduler_mode": "none"},
    "zram0": {"rotational": "0", "scheduler_mode": ""},
    "dm-0": {"rotational": "0", "scheduler_mode": "none"},
}


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"mq_scheduler", "recommended_scheduler", "disk_class_excludes"}


@pytest.mark.parametrize(
    ("name", "legacy", "expected"),
    [
        ("noop", False, "none"),
        ("deadline", False, "mq-deadline"),
        ("cfq", False, "bfq"),
        ("kyber", False, "kyber"),
        (" none ", False, "none"),
        ("none", True, "noop"),
        ("mq-deadline", True, "deadline"),
        ("bfq", True, "cfq"),
    ],
)
def test_mq_scheduler(name, legacy, expected):
    assert mq_scheduler(name, legacy=legacy) == expected


@pytest.mark.parametrize("bad", ["", None, 3])
def test_mq_scheduler_rejects_non_names(bad):
    with pytest.raises(AnsibleFilterError, match="expects a scheduler name"):
        mq_scheduler(bad)


def test_recommended_scheduler_defaults():
    # sdb, a SATA SSD, is left alone, as the disk_tuning role leaves it (disk_tuning_nonrotational_scheduler: null)
    assert recommended_scheduler(DEVICES) == {
        "nvme0n1": "none",
        "vda": "none",
        "sda": "mq-deadline",
    }


def test_recommended_scheduler_defaults_are_the_roles():
    with open(os.path.join(ROOT, "roles", "disk_tuning", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert {cls: defaults[f"disk_tuning_{cls}_scheduler"] for cls in DEFAULT_RECOMMENDATIONS} == DEFAULT_RECOMMENDATIONS


def test_recommended_scheduler_null_leaves_a_class_out():
    assert recommended_scheduler(DEVICES, {"rotational": None}) == {"nvme0n1": "none", "vda": "none"}


def test_recommended_scheduler_overrides_and_virtual():
    out = recommended_scheduler(DEVICES, {"nonrotational": "none", "rotational": "bfq"}, include_virtual=True)
    assert out == {"nvme0n1": "none", "vda": "none", "sda": "bfq", "sdb": "none", "loop0": "none", "dm-0": "none"}


def test_recommended_scheduler_legacy_kernel():
    devices = {
        "sda": {"rotational": "1", "scheduler_mode": "cfq"},
        "vda": {"rotational": "1", "scheduler_mode": "noop"},
    }
    assert recommended_scheduler(devices) == {"sda": "deadline", "vda": "noop"}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((["sda"],), "expects the ansible_devices fact"),
        ((DEVICES, {"ssd": "none"}), "unknown device class ssd"),
        ((DEVICES, "none"), "recommendations must map device classes"),
        (({"sda": "x"},), "facts of device 'sda' are not a mapping"),
    ],
)
def test_recommended_scheduler_errors(args, match):
    with pytest.raises(AnsibleFilterError, match=match):
        recommended_scheduler(*args)


@pytest.mark.parametrize(
    ("schedulers", "device_class", "expected"),
    [
        (
            {"nvme": "none", "virtio": "none", "rotational": "mq-deadline", "nonrotational": None},
            "rotational",
            ["nvme*", "vd*"],
        ),
        ({"nvme": "none", "virtio": "none", "rotational": "mq-deadline"}, "nonrotational", ["nvme*", "vd*"]),
        # A null named kind is left alone: the rotational classes exclude it all the same.
        ({"nvme": "none", "virtio": None, "rotational": "mq-deadline"}, "rotational", ["nvme*", "vd*"]),
        ({"nvme": None, "virtio": "none", "nonrotational": "none"}, "nonrotational", ["nvme*", "vd*"]),
        ({"nvme": None, "virtio": "mq-deadline", "rotational": None}, "rotational", ["nvme*", "vd*"]),
        ({"nvme": None, "virtio": None, "rotational": "mq-deadline"}, "rotational", ["nvme*", "vd*"]),
        ({"nvme": "none", "virtio": "none"}, "nvme", []),
        ({"nvme": "none", "virtio": "none"}, "virtio", []),
        # 'all' is every non-virtual disk, minus the named kinds tuned by their own class.
        ({}, "all", []),
        ({"nvme": "none", "virtio": None, "all": "mq-deadline"}, "all", ["nvme*"]),
    ],
)
def test_disk_class_excludes(schedulers, device_class, expected):
    assert disk_class_excludes(schedulers, device_class) == expected


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((["nvme"], "rotational"), "expects a mapping of device class to scheduler"),
        (({"nvme": "none"}, "ssd"), "device class 'ssd' is not one of: nvme, virtio"),
    ],
)
def test_disk_class_excludes_errors(args, match):
    with pytest.raises(AnsibleFilterError, match=match):
        disk_class_excludes(*args)


@pytest.mark.parametrize(
    "schedulers",
    [
        {"nvme": "none", "virtio": "none", "rotational": "mq-deadline", "nonrotational": "none"},
        {"nvme": "none", "virtio": None, "rotational": "mq-deadline", "nonrotational": "none"},
        {"nvme": None, "virtio": "none", "rotational": "mq-deadline", "nonrotational": "none"},
        {"nvme": None, "virtio": None, "rotational": "mq-deadline", "nonrotational": None},
        DEFAULT_RECOMMENDATIONS,
    ],
)
def test_disk_class_excludes_keeps_each_device_in_one_class(schedulers):
    """What the role selects with the filter's excludes is what tuning_class says, device by device.

    A device whose class is not tuned (null) is selected by no class at all: it is left alone.
    """
    devices = {
        "nvme0n1": False,
        "nvme1n1": True,
        "vda": True,
        "vdb": False,
        "sda": True,
        "sdb": False,
        "mmcblk0": False,
    }
    tuned = [cls for cls, scheduler in schedulers.items() if scheduler is not None]
    for name, rotational in devices.items():
        dev = {"kind": bd.device_kind(name), "rotational": rotational}
        tuned_by = [
            cls
            for cls in tuned
            if cls in bd.device_classes(dev)
            and not any(fnmatch.fnmatchcase(name, p) for p in disk_class_excludes(schedulers, cls))
        ]
        own = bd.tuning_class(name, rotational)
        assert tuned_by == ([own] if own in tuned else []), name


def test_disk_class_excludes_agrees_with_recommended_scheduler():
    """The role (class selection with the filter's excludes) and recommended_scheduler pick the same devices."""
    for schedulers in (
        {"nvme": None, "virtio": None, "rotational": "mq-deadline", "nonrotational": "none"},
        {"nvme": "none", "virtio": None, "rotational": "bfq", "nonrotational": None},
    ):
        recommended = recommended_scheduler(DEVICES, schedulers)
        selected = {}
        for cls, scheduler in schedulers.items():
            if scheduler is None:
                continue
            for name, facts in DEVICES.items():
                dev = {"kind": bd.device_kind(name), "rotational": facts["rotational"] == "1"}
                if not facts["scheduler_mode"]:
                    continue
                if cls in bd.device_classes(dev) and not any(
                    fnmatch.fnmatchcase(name, p) for p in disk_class_excludes(schedulers, cls)
                ):
                    assert name not in selected, name
                    selected[name] = scheduler
        assert selected == recommended, schedulers
