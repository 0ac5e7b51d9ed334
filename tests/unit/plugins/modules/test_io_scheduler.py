"""Module-level tests of io_scheduler and io_scheduler_info against a fake sysfs tree."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs
from ansible_collections.onmetal.faas.plugins.modules import io_scheduler, io_scheduler_info
from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import run_module


@pytest.fixture
def kernel(monkeypatch):
    """Make sysfs writes behave like the block layer and count them."""
    writes = []

    def write(path, value):
        writes.append((path, value))
        if path.endswith("/queue/scheduler"):
            with open(path) as handle:
                _active, available = bd.parse_scheduler(handle.read())
            if value not in available:
                raise OSError(errno.EINVAL, "Invalid argument")
            value = " ".join(f"[{s}]" if s == value else s for s in available)
        with open(path, "w") as handle:
            handle.write(value + "\n")

    monkeypatch.setattr(_blockdev_sysfs, "_write_sysfs", write)
    return writes


def make_device(root, name, scheduler, rotational):
    qdir = root / "block" / name / "queue"
    qdir.mkdir(parents=True)
    (qdir / "scheduler").write_text(scheduler + "\n")
    (qdir / "rotational").write_text(rotational + "\n")
    (qdir / "read_ahead_kb").write_text("128\n")
    (qdir / "nr_requests").write_text("256\n")


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / "sys"
    make_device(root, "nvme0n1", "[none] mq-deadline", "0")
    make_device(root, "vda", "none [mq-deadline] kyber bfq", "1")
    make_device(root, "sda", "mq-deadline kyber [bfq] none", "1")
    make_device(root, "loop0", "[none] mq-deadline kyber bfq", "0")
    return root


def scheduler_of(root, name):
    return bd.parse_scheduler((root / "block" / name / "queue" / "scheduler").read_text())[0]


run = run_module


def test_four_step_pattern_with_persistence(sysfs, tmp_path, kernel):
    rules = tmp_path / "rules.d" / "60-test.rules"
    args = dict(
        device_class="rotational",
        scheduler="mq-deadline",
        queue={"read_ahead_kb": 256},
        persist=True,
        rules_path=str(rules),
        sysfs_root=str(sysfs),
    )

    first = run(io_scheduler, args, check=True, diff=True).result
    assert first["changed"] and first["runtime_changed"] and first["rules_changed"]
    assert first["selected"] == ["sda", "vda"]
    assert first["devices"]["sda"]["previous"] == "bfq" and first["devices"]["sda"]["current"] == "mq-deadline"
    assert first["sysfs_writes"] == 0 and kernel == []
    assert not rules.exists()
    assert scheduler_of(sysfs, "sda") == "bfq"
    assert first["diff"][0]["before"] == "scheduler: bfq\nread_ahead_kb: 128\n"
    assert first["diff"][-1]["after"] == first["rules"]
    assert first["diff"][-1]["before_header"].endswith("(absent)")

    second = run(io_scheduler, args, diff=True).result
    assert second["changed"] and second["sysfs_writes"] == 3  # sda: scheduler + read-ahead, vda: read-ahead
    assert len(kernel) == 3
    assert scheduler_of(sysfs, "sda") == "mq-deadline"
    assert (sysfs / "block" / "vda" / "queue" / "read_ahead_kb").read_text().strip() == "256"
    assert rules.read_text() == second["rules"]
    assert oct(rules.stat().st_mode & 0o777) == "0o644"
    assert 'ATTR{queue/rotational}=="1", ATTR{queue/scheduler}="mq-deadline", ATTR{queue/read_ahead_kb}="256"' in (
        rules.read_text()
    )

    third = run(io_scheduler, args, diff=True).result
    assert not third["changed"] and not third["runtime_changed"] and not third["rules_changed"]
    assert third["sysfs_writes"] == 0 and len(kernel) == 3
    assert third["diff"] == []

    fourth = run(io_scheduler, args, check=True).result
    assert not fourth["changed"]


def test_rules_file_changed_alone_is_reported_apart_from_runtime(sysfs, tmp_path, kernel):
    rules = tmp_path / "60-test.rules"
    rules.write_text("# stale\n")
    args = dict(devices=["nvme0n1"], scheduler="none", persist=True, rules_path=str(rules), sysfs_root=str(sysfs))
    result = run(io_scheduler, args, diff=True).result
    assert result["changed"] and result["rules_changed"] and not result["runtime_changed"]
    assert result["diff"] == [
        dict(before_header=str(rules), after_header=str(rules), before="# stale\n", after=result["rules"])
    ]
    assert kernel == []


def test_legacy_name_is_mapped_with_warning(sysfs, kernel):
    result = run(io_scheduler, dict(devices=["vda", "sda"], scheduler="noop", sysfs_root=str(sysfs))).result
    assert result["devices"]["vda"]["current"] == "none" and scheduler_of(sysfs, "vda") == "none"
    assert scheduler_of(sysfs, "sda") == "none"
    assert [v for p, v in kernel] == ["none", "none"]
    assert any("'noop' was mapped to 'none' on sda, vda" in w for w in result["warnings"])


def test_unavailable_scheduler_changes_nothing(sysfs, kernel):
    before = {n: scheduler_of(sysfs, n) for n in ("nvme0n1", "vda", "sda")}
    exc = run(io_scheduler, dict(devices=["vda", "sda", "nvme0n1"], scheduler="kyber", sysfs_root=str(sysfs)))
    assert exc.failed
    assert "scheduler 'kyber' is not offered by nvme0n1; available: none, mq-deadline" in exc.result["msg"]
    assert "nothing was changed" in exc.result["msg"]
    assert kernel == []
    assert {n: scheduler_of(sysfs, n) for n in before} == before


def test_missing_device_lists_found(sysfs, kernel):
    exc = run(io_scheduler, dict(devices=["sdq"], scheduler="none", sysfs_root=str(sysfs)))
    assert exc.failed
    assert "block device 'sdq' not found" in exc.result["msg"]
    assert "block devices found: loop0, nvme0n1, sda, vda" in exc.result["msg"]


def test_class_selection_skips_loop_and_tolerates_no_match(sysfs, kernel):
    result = run(io_scheduler, dict(device_class="virtio", scheduler="none", sysfs_root=str(sysfs))).result
    assert result["selected"] == ["vda"]
    result = run(io_scheduler, dict(device_class="nonrotational", scheduler="none", sysfs_root=str(sysfs))).result
    assert result["selected"] == ["nvme0n1"] and not result["changed"]
    (sysfs / "block" / "nvme0n1" / "queue" / "rotational").write_text("1\n")
    result = run(io_scheduler, dict(device_class="nonrotational", scheduler="none", sysfs_root=str(sysfs))).result
    assert result["selected"] == [] and result["devices"] == {} and not result["changed"]


def test_requires_a_selection_and_something_to_set(sysfs):
    exc = run(io_scheduler, dict(scheduler="none", sysfs_root=str(sysfs)))
    assert exc.failed and "one of the following is required: devices, device_class" in exc.result["msg"]
    exc = run(io_scheduler, dict(devices=["vda"], sysfs_root=str(sysfs)))
    assert exc.failed and exc.result["msg"] == "nothing to do: set scheduler, queue, or both"


def test_load_module_in_check_mode_only_warns(sysfs, kernel):
    exc = run(
        io_scheduler, dict(devices=["nvme0n1"], scheduler="bfq", load_module=True, sysfs_root=str(sysfs)), check=True
    )
    assert exc.failed  # still not offered, and check mode may not load modules
    assert "modprobe bfq" in exc.result["msg"]


def test_info_reports_every_device(sysfs):
    result = run(io_scheduler_info, dict(sysfs_root=str(sysfs))).result
    assert not result["changed"] and result["block_layer"] == "blk-mq"
    assert sorted(result["devices"]) == ["loop0", "nvme0n1", "sda", "vda"]
    sda = result["devices"]["sda"]
    assert sda["scheduler"] == "bfq" and sda["rotational"] is True and sda["kind"] == "scsi"
    assert sda["classes"] == ["rotational", "all"]
    assert sda["queue"] == {"read_ahead_kb": "128", "nr_requests": "256"}
    assert result["devices"]["loop0"]["classes"] == []
    only = run(io_scheduler_info, dict(devices=["nvme*"], sysfs_root=str(sysfs))).result
    assert list(only["devices"]) == ["nvme0n1"]


def test_info_bad_sysfs_root(tmp_path):
    exc = run(io_scheduler_info, dict(sysfs_root=str(tmp_path / "none")))
    assert exc.failed and "sysfs_root must point at a mounted sysfs" in exc.result["msg"]


def test_rules_directory_is_created(sysfs, tmp_path, kernel):
    rules = tmp_path / "etc" / "udev" / "rules.d" / "60-x.rules"
    run(
        io_scheduler,
        dict(device_class="nvme", scheduler="none", persist=True, rules_path=str(rules), sysfs_root=str(sysfs)),
    )
    assert rules.is_file()
    assert not [f for f in os.listdir(rules.parent) if f.startswith(".onmetal")]
