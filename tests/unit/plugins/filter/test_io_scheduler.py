"""Tests of the mq_scheduler and recommended_scheduler filters."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.filter.io_scheduler import (
    FilterModule,
    mq_scheduler,
    recommended_scheduler,
)

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
    assert set(FilterModule().filters()) == {"mq_scheduler", "recommended_scheduler"}


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
    assert recommended_scheduler(DEVICES) == {
        "nvme0n1": "none",
        "vda": "none",
        "sda": "mq-deadline",
        "sdb": "mq-deadline",
    }


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
