"""Unit tests for the pure planning code and sysfs helpers in _blockdev."""

from __future__ import annotations

import errno
import os

import pytest

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


@pytest.fixture
def host(tmp_path):
    """A KVM guest with NVMe, virtio, a SATA disk, a loop device, zram and device-mapper."""
    make_device(tmp_path, "nvme0n1", "[none] mq-deadline\n", "0", model="Samsung SSD 980 PRO 1TB")
    make_device(tmp_path, "nvme1n1", "[none] mq-deadline\n", "0")
    make_device(tmp_path, "vda", "none [mq-deadline] kyber bfq\n", "1", iosched=MQ_DEADLINE_PARAMS, driver="virtio_blk")
    make_device(tmp_path, "sda", "mq-deadline kyber [bfq] none\n", "1", model="ST4000DM004-2CV1")
    make_device(tmp_path, "loop0", MQ, "0")
    make_device(tmp_path, "zram0", None, "0")
    make_device(tmp_path, "dm-0", "none\n", "0")
    return tmp_path


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


def test_read_block_devices(host):
    state = bd.read_block_devices(str(host))
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
        bd.read_block_devices(str(tmp_path / "nope"))


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
    state = bd.read_block_devices(str(host))
    assert bd.select_devices(state, devices, device_class, exclude) == expected


def test_select_missing_device_lists_found(host):
    state = bd.read_block_devices(str(host))
    with pytest.raises(bd.BlockdevError) as exc:
        bd.select_devices(state, ["nvme0n1", "sdz"], sysfs_root=str(host))
    msg = str(exc.value)
    assert f"block device 'sdz' not found in {host}/block" in msg
    assert "block devices found: dm-0, loop0, nvme0n1, nvme1n1, sda, vda, zram0" in msg


def test_select_unknown_class(host):
    with pytest.raises(bd.BlockdevError, match="device_class 'ssd' is not supported; expected one of: nvme"):
        bd.select_devices(bd.read_block_devices(str(host)), device_class="ssd")


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
    assert bd.resolve_scheduler("dev0", requested, available) == expected


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
        bd.resolve_scheduler("d0", requested, available)
    for fragment in fragments:
        assert fragment in str(exc.value)


# --------------------------------------------------------------------------- queue settings


def test_normalize_queue_orders_queue_before_iosched():
    out = bd.normalize_queue({"iosched": {"write_expire": 3000, "read_expire": "100"}, "rq_affinity": 2, "nomerges": 0})
    assert list(out.items()) == [
        ("queue/nomerges", "0"),
        ("queue/rq_affinity", "2"),
        ("queue/iosched/read_expire", "100"),
        ("queue/iosched/write_expire", "3000"),
    ]


def test_normalize_queue_slash_form_and_bool():
    assert bd.normalize_queue({"iosched/low_latency": False, "read_ahead_kb": 4096.0}) == {
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
        bd.normalize_queue(queue)


# --------------------------------------------------------------------------- planning


def test_plan_no_change_when_values_match(host):
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["nvme0n1", "nvme1n1"], "none", {"queue/read_ahead_kb": "128"})
    assert plan["changed"] is False
    assert plan["writes"] == 0
    assert plan["devices"]["nvme0n1"]["queue"] == {"read_ahead_kb": {"before": "128", "after": "128"}}


def test_plan_switch_writes_scheduler_then_tunables(host):
    state = bd.read_block_devices(str(host))
    settings = bd.normalize_queue({"nr_requests": 256, "read_ahead_kb": 512, "iosched": {"read_expire": 100}})
    plan = bd.plan_changes(state, ["sda"], "mq-deadline", settings)
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
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["vda"], "mq-deadline", {"queue/iosched/read_expire": "500"})
    assert plan["changed"] is False
    plan = bd.plan_changes(state, ["vda"], None, {"queue/iosched/read_expire": "250"})
    assert plan["devices"]["vda"]["writes"] == [["queue/iosched/read_expire", "250"]]


def test_plan_legacy_name_warns_once_for_all_devices(host):
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["nvme0n1", "nvme1n1", "vda"], "noop")
    assert [d["current"] for d in plan["devices"].values()] == ["none", "none", "none"]
    assert plan["writes"] == 1  # only vda differs
    assert plan["warnings"] == [
        "scheduler 'noop' was mapped to 'none' on nvme0n1, nvme1n1, vda: the blk-mq block layer "
        "(every kernel >= 5.0) has no 'noop'; write 'none' to silence this warning"
    ]


def test_plan_legacy_kernel_maps_mq_names(tmp_path):
    make_device(tmp_path, "sda", "noop deadline [cfq]\n", "1")
    state = bd.read_block_devices(str(tmp_path))
    plan = bd.plan_changes(state, ["sda"], "mq-deadline")
    assert plan["devices"]["sda"]["writes"] == [["queue/scheduler", "deadline"]]
    assert "legacy single-queue block layer" in plan["warnings"][0]
    assert bd.host_flavor(state) == "legacy"


def test_plan_validates_every_device_before_anything(host):
    state = bd.read_block_devices(str(host))
    with pytest.raises(bd.BlockdevError) as exc:
        bd.plan_changes(state, ["nvme0n1", "nvme1n1", "sda", "vda", "zram0"], "kyber", {"queue/bogus": "1"})
    msg = str(exc.value)
    assert msg.startswith("4 problems, nothing was changed: ")
    assert "scheduler 'kyber' is not offered by nvme0n1, nvme1n1; available: none, mq-deadline" in msg
    assert "modprobe kyber-iosched" in msg
    assert "zram0 has no I/O scheduler" in msg
    assert "queue tunable 'bogus' is not offered by sda; available: nr_requests, read_ahead_kb, rq_affinity" in msg
    assert "queue tunable 'bogus' is not offered by vda" in msg


def test_plan_iosched_param_checks(host):
    state = bd.read_block_devices(str(host))
    with pytest.raises(bd.BlockdevError, match=r"'read_expire' is not known for scheduler 'kyber' \(set on vda\)"):
        bd.plan_changes(state, ["vda"], "kyber", {"queue/iosched/read_expire": "100"})
    with pytest.raises(bd.BlockdevError, match=r"'slice_idle' is not offered by scheduler 'mq-deadline' on vda"):
        bd.plan_changes(state, ["vda"], None, {"queue/iosched/slice_idle": "0"})
    with pytest.raises(bd.BlockdevError, match=r"'none' has no parameters"):
        bd.plan_changes(state, ["vda"], "none", {"queue/iosched/read_expire": "100"})


def test_plan_diff(host):
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["nvme0n1", "vda"], "none", {"queue/read_ahead_kb": "256"}, sysfs_root=str(host))
    diff = bd.plan_diff(plan, str(host))
    assert [d["before_header"] for d in diff] == [
        f"{host}/block/nvme0n1/queue",
        f"{host}/block/vda/queue",
    ]
    assert diff[1]["before"] == "scheduler: mq-deadline\nread_ahead_kb: 128\n"
    assert diff[1]["after"] == "scheduler: none\nread_ahead_kb: 256\n"


# --------------------------------------------------------------------------- applying


def test_apply_then_replan_is_idempotent(host):
    kernel = FakeKernel()
    settings = bd.normalize_queue({"read_ahead_kb": 256, "iosched": {"read_expire": 100}})
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["sda", "vda"], "mq-deadline", settings)
    assert bd.apply_plan(plan, str(host), writer=kernel) == {"writes": 5, "adjusted": []}
    state = bd.read_block_devices(str(host))
    assert state["sda"]["scheduler"] == "mq-deadline" and state["sda"]["iosched"]["read_expire"] == "100"
    assert state["vda"]["queue"]["read_ahead_kb"] == "256"
    again = bd.plan_changes(state, ["sda", "vda"], "mq-deadline", settings)
    assert again["changed"] is False and again["writes"] == 0


def test_apply_rolls_back_when_kernel_rejects(host):
    kernel = FakeKernel(fail_on=("vda/queue/read_ahead_kb", "256"))
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["nvme1n1", "sda", "vda"], "mq-deadline", {"queue/read_ahead_kb": "256"})
    with pytest.raises(bd.BlockdevError) as exc:
        bd.apply_plan(plan, str(host), writer=kernel)
    expected = f"writing '256' to {host}/block/vda/queue/read_ahead_kb failed: the kernel rejected the value (EINVAL)"
    assert expected in str(exc.value)
    assert "rolled back 4 earlier write(s)" in str(exc.value)
    assert exc.value.state_restored is True
    after = bd.read_block_devices(str(host))
    assert {n: after[n]["scheduler"] for n in ("nvme1n1", "sda", "vda")} == {
        "nvme1n1": "none",
        "sda": "bfq",
        "vda": "mq-deadline",
    }
    assert {after[n]["queue"]["read_ahead_kb"] for n in ("nvme1n1", "sda", "vda")} == {"128"}


def test_apply_detects_scheduler_not_taking_effect(host):
    def stubborn(path, value):
        pass  # the write "succeeds" but nothing changes

    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["sda"], "mq-deadline")
    with pytest.raises(bd.BlockdevError, match="wrote 'mq-deadline' to .* but the kernel reports 'bfq' as active"):
        bd.apply_plan(plan, str(host), writer=stubborn)


def test_check_writable_reports_read_only_sysfs(host, monkeypatch):
    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["sda"], "mq-deadline")
    monkeypatch.setattr(bd.os, "access", lambda path, mode: False)
    with pytest.raises(bd.BlockdevError, match=r"cannot write .*/block/sda/queue/scheduler \(read-only sysfs"):
        bd.check_writable(plan, str(host))


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
    text = bd.render_rules(**kwargs)
    lines = text.splitlines()
    assert lines[0].startswith("# Managed by Ansible (onmetal.faas.io_scheduler)")
    assert [line for line in lines if not line.startswith("#")] == [rule]


def test_render_rules_one_rule_per_source():
    text = bd.render_rules(devices=["sdb", "sdc"], device_class="virtio", scheduler="none")
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
        bd.render_rules(**kwargs)


def test_apply_reports_values_the_kernel_rounds(host):
    def jiffies_kernel(path, value):
        if path.endswith("read_expire"):  # HZ=250: milliseconds are rounded up to whole 4 ms ticks
            value = str(-(-int(value) // 4) * 4)
        FakeKernel()(path, value)

    state = bd.read_block_devices(str(host))
    plan = bd.plan_changes(state, ["vda"], None, {"queue/iosched/read_expire": "250", "queue/read_ahead_kb": "256"})
    applied = bd.apply_plan(plan, str(host), writer=jiffies_kernel)
    assert applied["writes"] == 2
    assert applied["adjusted"] == [
        "vda: wrote '250' to queue/iosched/read_expire but the kernel stores '252' (rounded to its granularity); "
        "use '252' so that the next run does not report a change again"
    ]
