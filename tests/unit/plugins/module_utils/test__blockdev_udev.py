"""Unit tests of the udev rules text in _blockdev_udev."""

from __future__ import annotations

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_udev as udev

# --------------------------------------------------------------------------- udev rules

_BASE = 'ACTION=="add|change", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", '


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        (
            dict(device_class="nvme", scheduler="none"),
            _BASE + 'KERNEL=="nvme[0-9]*n[0-9]*", ATTR{queue/scheduler}="none"',
        ),
        (
            dict(device_class="rotational", scheduler="deadline", settings={"queue/read_ahead_kb": "1024"}),
            _BASE + 'KERNEL!="loop*|ram*|zram*|dm-*", ATTR{queue/rotational}=="1", '
            'ATTR{queue/scheduler}="mq-deadline", ATTR{queue/read_ahead_kb}="1024"',
        ),
        (
            dict(device_class="all", exclude=["nvme*", "/dev/vda"], scheduler="mq-deadline"),
            _BASE + 'KERNEL!="loop*|ram*|zram*|dm-*", KERNEL!="nvme*|vda", ATTR{queue/scheduler}="mq-deadline"',
        ),
        (
            dict(devices=["loop*"], scheduler="none", settings={"queue/iosched/read_expire": "100"}),
            _BASE + 'KERNEL=="loop*", KERNEL!="ram*|zram*|dm-*", ATTR{queue/scheduler}="none", '
            'ATTR{queue/iosched/read_expire}="100"',
        ),
        (
            dict(devices=["sdb"], scheduler="none", flavor="legacy"),
            _BASE + 'KERNEL=="sdb", ATTR{queue/scheduler}="noop"',
        ),
        (
            dict(devices=["sdb"], settings={"queue/rq_affinity": "2"}),
            _BASE + 'KERNEL=="sdb", ATTR{queue/rq_affinity}="2"',
        ),
    ],
)
def test_render_rules(kwargs, rule):
    text = udev.render_rules(**kwargs)
    lines = text.splitlines()
    assert lines[0].startswith("# Managed by Ansible (onmetal.faas.io_scheduler)")
    assert [line for line in lines if not line.startswith("#")] == [rule]


def test_render_rules_one_rule_per_source():
    text = udev.render_rules(devices=["sdb", "sdc"], device_class="virtio", scheduler="none")
    assert [line for line in text.splitlines() if line.startswith("# d")] == [
        "# devices: sdb",
        "# devices: sdc",
        "# device_class: virtio",
    ]
    assert text.count("ACTION==") == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(devices=['sd"a'], scheduler="none"), "must not contain"),
        (dict(devices=["sda|sdb"], scheduler="none"), "must not contain"),
        (dict(devices=["sda"]), "nothing to persist"),
    ],
)
def test_render_rules_errors(kwargs, match):
    with pytest.raises(bd.BlockdevError, match=match):
        udev.render_rules(**kwargs)
