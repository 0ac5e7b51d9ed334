"""The io_scheduler logic without AnsibleModule: parameters and injected I/O in, a result or ModuleFailure out."""

from __future__ import annotations

import os

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs
from ansible_collections.onmetal.faas.plugins.module_utils import _io_scheduler as ios
from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure


def make_device(root, name, scheduler, rotational="1"):
    qdir = root / "block" / name / "queue"
    qdir.mkdir(parents=True)
    (qdir / "scheduler").write_text(scheduler + "\n")
    (qdir / "rotational").write_text(rotational + "\n")
    (qdir / "read_ahead_kb").write_text("128\n")


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / "sys"
    make_device(root, "vda", "none [mq-deadline]")
    make_device(root, "sda", "[mq-deadline] none")
    return root


def params(sysfs, **overrides):
    """Module parameters with the defaults of ARGUMENT_SPEC applied, as AnsibleModule would."""
    out = {key: spec.get("default") for key, spec in ios.ARGUMENT_SPEC.items()}
    out["sysfs_root"] = str(sysfs)
    out.update(overrides)
    return out


def scheduler_file(sysfs, name):
    return (sysfs / "block" / name / "queue" / "scheduler").read_text().strip()


def test_check_mode_returns_the_plan_and_sends_warnings_to_the_sink(sysfs):
    warnings = []
    result = ios.run_io_scheduler(
        params(sysfs, devices=["vda"], scheduler="noop"), check_mode=True, diff=True, warn=warnings.append
    )
    assert result["changed"] and result["runtime_changed"] and not result["rules_changed"]
    assert result["selected"] == ["vda"] and result["sysfs_writes"] == 0
    assert result["devices"]["vda"]["previous"] == "mq-deadline" and result["devices"]["vda"]["current"] == "none"
    assert result["diff"][0]["after"] == "scheduler: none\n"
    assert warnings == [
        "scheduler 'noop' was mapped to 'none' on vda: the blk-mq block layer (every kernel >= 5.0) has no 'noop'; "
        "write 'none' to silence this warning"
    ]
    assert scheduler_file(sysfs, "vda") == "none [mq-deadline]"


def test_apply_writes_sysfs_and_moves_the_rules_file_into_place(sysfs, tmp_path):
    moves = []

    def move(src, dest):
        moves.append(dest)
        os.replace(src, dest)

    rules = tmp_path / "rules.d" / "60-x.rules"
    args = params(sysfs, devices=["vda"], scheduler="none", persist=True, rules_path=str(rules))
    result = ios.run_io_scheduler(args, move=move)
    assert result["changed"] and result["sysfs_writes"] == 1 and result["rules_changed"]
    assert "diff" not in result
    assert scheduler_file(sysfs, "vda") == "none"
    assert moves == [str(rules)] and rules.read_text() == result["rules"]
    again = ios.run_io_scheduler(args, move=move)
    assert not again["changed"] and moves == [str(rules)]


def test_nothing_to_do_raises_with_the_empty_result(sysfs):
    with pytest.raises(ModuleFailure) as exc:
        ios.run_io_scheduler(params(sysfs, devices=["vda"]))
    assert exc.value.fail_kwargs() == dict(
        msg="nothing to do: set scheduler, queue, or both",
        changed=False,
        runtime_changed=False,
        rules_changed=False,
        devices={},
        selected=[],
        sysfs_writes=0,
    )


def test_planning_problem_raises_module_failure(sysfs):
    with pytest.raises(ModuleFailure, match="2 problems, nothing was changed: scheduler .kyber. is not offered by sda"):
        ios.run_io_scheduler(params(sysfs, device_class="rotational", scheduler="kyber"))


def test_load_module_runs_the_injected_loader_and_reads_again(sysfs):
    calls = []

    def modprobe(kmod):
        calls.append(kmod)
        for name in ("sda", "vda"):
            path = sysfs / "block" / name / "queue" / "scheduler"
            path.write_text(path.read_text().strip() + " bfq\n")
        return 0, ""

    args = params(sysfs, devices=["sda", "vda"], scheduler="bfq", load_module=True)
    result = ios.run_io_scheduler(args, modprobe=modprobe)
    assert calls == ["bfq"] and result["loaded_modules"] == ["bfq"]
    assert result["sysfs_writes"] == 2 and scheduler_file(sysfs, "sda") == "bfq"


def test_load_module_failure_names_the_command(sysfs):
    args = params(sysfs, devices=["sda"], scheduler="kyber", load_module=True)
    with pytest.raises(ModuleFailure) as exc:
        ios.run_io_scheduler(args, modprobe=lambda kmod: (1, "modprobe: FATAL: Module kyber-iosched not found.\n"))
    assert exc.value.msg == (
        "'modprobe kyber-iosched' failed (rc=1): modprobe: FATAL: Module kyber-iosched not found.; install the "
        "kernel's extra modules package or pick a scheduler the devices offer"
    )
    assert exc.value.result["changed"] is False


def test_load_module_in_check_mode_warns_and_loads_nothing(sysfs):
    warnings = []

    def modprobe(kmod):
        raise AssertionError("check mode must not load kernel modules")

    args = params(sysfs, devices=["sda"], scheduler="bfq", load_module=True)
    with pytest.raises(ModuleFailure, match="modprobe bfq"):
        ios.run_io_scheduler(args, check_mode=True, modprobe=modprobe, warn=warnings.append)
    assert warnings == ["check mode: would run 'modprobe bfq'; devices are planned as they are now"]


def test_rolled_back_failure_reports_nothing_changed(sysfs, monkeypatch):
    def refuse(path, value):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(_blockdev_sysfs, "_write_sysfs", refuse)
    with pytest.raises(ModuleFailure) as exc:
        ios.run_io_scheduler(params(sysfs, devices=["vda"], scheduler="none"))
    assert "the kernel rejected the value (EINVAL); nothing had been changed" in exc.value.msg
    assert exc.value.result["changed"] is False and exc.value.result["selected"] == ["vda"]


def test_info_returns_devices_and_block_layer(sysfs):
    result = ios.run_io_scheduler_info(dict(devices=["s*"], sysfs_root=str(sysfs)))
    assert result["changed"] is False and result["block_layer"] == "blk-mq"
    assert list(result["devices"]) == ["sda"] and result["devices"]["sda"]["scheduler"] == "mq-deadline"
    assert "name" not in result["devices"]["sda"]


def test_info_failure_is_a_module_failure(tmp_path):
    with pytest.raises(ModuleFailure, match="sysfs_root must point at a mounted sysfs") as exc:
        ios.run_io_scheduler_info(dict(devices=None, sysfs_root=str(tmp_path)))
    assert exc.value.result == {}
