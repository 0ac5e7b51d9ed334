"""Benchmark onmetal.faas.io_scheduler on 64 real loop devices.

Needs root, losetup and a kernel with loop devices.  Creates 64 sparse backing files in a temporary
directory, attaches them, and measures side by side:

* baseline: a naive shell loop that echoes the scheduler into every device's queue/scheduler
  (what rc.local scripts do), which writes 64 files on every run;
* the module through Ansible (``ansible localhost -m onmetal.faas.io_scheduler``): first apply,
  re-apply, and an apply where only half of the devices differ -- with the number of sysfs writes
  the module reports;
* the module's planning and applying code in-process (no Ansible start-up), to separate the cost
  of the work from the cost of running a module.

Every device is put back to the scheduler and read-ahead it had when attached, and detached, even
when the benchmark fails.  Usage: ``sudo python3 benchmarks/io_scheduler_loop64.py [--devices N]
[--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collections_dir(tmp):
    """A directory with ansible_collections/onmetal/faas pointing at this checkout."""
    parts = ROOT.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "onmetal"]:
        return os.sep.join(parts[:-3])
    link_dir = os.path.join(tmp, "collections", "ansible_collections", "onmetal")
    os.makedirs(link_dir)
    os.symlink(ROOT, os.path.join(link_dir, "faas"))
    return os.path.join(tmp, "collections")


def _ansible_bin():
    candidate = os.path.join(os.path.dirname(sys.executable), "ansible")
    return candidate if os.path.exists(candidate) else shutil.which("ansible")


def _read(dev, name):
    with open(f"/sys/block/{dev}/queue/{name}") as handle:
        return handle.read().strip()


def _active(dev):
    return next(t[1:-1] for t in _read(dev, "scheduler").split() if t.startswith("["))


def run_module(env, devices, scheduler):
    """Run the module once through Ansible; returns (seconds, result dict)."""
    args = json.dumps({"devices": devices, "scheduler": scheduler})
    cmd = [_ansible_bin(), "localhost", "-o", "-m", "onmetal.faas.io_scheduler", "-a", args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    out = proc.stdout.strip()
    if proc.returncode != 0 or "=>" not in out:
        raise SystemExit(f"module run failed (rc={proc.returncode}):\n{out}\n{proc.stderr}")
    return elapsed, json.loads(out.split("=>", 1)[1])


def run_naive(devices, scheduler):
    """The rc.local way: one shell, one unconditional write per device."""
    script = 'for d in "$@"; do echo "$S" > /sys/block/$d/queue/scheduler; done'
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script, "sh", *devices], env={"S": scheduler, "PATH": "/usr/bin:/bin"}, check=True)
    return time.perf_counter() - start


def run_inprocess(collections, devices, scheduler):
    """Plan and apply with the module_utils code directly; returns (seconds, writes)."""
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev as bd
    from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_plan as plans
    from ansible_collections.onmetal.faas.plugins.module_utils import _blockdev_sysfs as sysfs

    start = time.perf_counter()
    state = sysfs.read_block_devices("/sys")
    plan = plans.plan_changes(state, bd.select_devices(state, devices), scheduler)
    writes = sysfs.apply_plan(plan)["writes"] if plan["changed"] else 0
    return time.perf_counter() - start, writes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--json", help="also write the numbers to this file")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark attaches loop devices and writes to /sys")
    if not shutil.which("losetup") or not _ansible_bin():
        raise SystemExit("needs losetup (util-linux/mount) and ansible (pip install ansible-core)")

    tmp = tempfile.mkdtemp(prefix="io-scheduler-bench-")
    collections = _collections_dir(tmp)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        LC_ALL="C.UTF-8",
    )
    devices, original = [], {}
    results = {}
    try:
        for i in range(opts.devices):
            backing = os.path.join(tmp, f"disk{i}.img")
            with open(backing, "wb") as handle:
                handle.truncate(1 << 20)
            out = subprocess.run(["losetup", "--find", "--show", backing], capture_output=True, text=True, check=True)
            dev = os.path.basename(out.stdout.strip())
            devices.append(dev)
            original[dev] = (_active(dev), _read(dev, "read_ahead_kb"))
        for dev in devices:  # common starting point
            with open(f"/sys/block/{dev}/queue/scheduler", "w") as handle:
                handle.write("none")

        n = len(devices)
        results["naive_first_s"] = run_naive(devices, "mq-deadline")
        results["naive_again_s"] = run_naive(devices, "mq-deadline")
        results["naive_writes_per_run"] = n
        run_naive(devices, "none")

        results["module_first_s"], first = run_module(env, devices, "mq-deadline")
        results["module_again_s"], again = run_module(env, devices, "mq-deadline")
        assert all(_active(d) == "mq-deadline" for d in devices), "module did not switch every device"
        results["module_first_writes"] = first["sysfs_writes"]
        results["module_again_writes"] = again["sysfs_writes"]
        results["module_again_changed"] = again["changed"]

        for dev in devices[: n // 2]:  # drift on half of the devices
            with open(f"/sys/block/{dev}/queue/scheduler", "w") as handle:
                handle.write("none")
        results["module_half_s"], half = run_module(env, devices, "mq-deadline")
        results["module_half_writes"] = half["sysfs_writes"]

        run_naive(devices, "none")
        results["inprocess_first_s"], results["inprocess_first_writes"] = run_inprocess(
            collections, devices, "mq-deadline"
        )
        results["inprocess_again_s"], results["inprocess_again_writes"] = run_inprocess(
            collections, devices, "mq-deadline"
        )
    finally:
        for dev, (sched, read_ahead) in original.items():
            with open(f"/sys/block/{dev}/queue/scheduler", "w") as handle:
                handle.write(sched)
            with open(f"/sys/block/{dev}/queue/read_ahead_kb", "w") as handle:
                handle.write(read_ahead)
            subprocess.run(["losetup", "--detach", f"/dev/{dev}"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    r = results
    print(f"io_scheduler on {n} loop devices (kernel {os.uname().release})")
    print(f"{'run':42} {'seconds':>9} {'sysfs writes':>13} {'vs naive':>9}")
    rows = [
        ("naive echo loop, first", r["naive_first_s"], n, r["naive_first_s"]),
        ("naive echo loop, again", r["naive_again_s"], n, r["naive_again_s"]),
        ("module via ansible, first apply", r["module_first_s"], r["module_first_writes"], r["naive_first_s"]),
        ("module via ansible, re-apply", r["module_again_s"], r["module_again_writes"], r["naive_again_s"]),
        ("module via ansible, half drifted", r["module_half_s"], r["module_half_writes"], r["naive_again_s"]),
        (
            "module code in-process, first apply",
            r["inprocess_first_s"],
            r["inprocess_first_writes"],
            r["naive_first_s"],
        ),
        ("module code in-process, re-apply", r["inprocess_again_s"], r["inprocess_again_writes"], r["naive_again_s"]),
    ]
    for label, seconds, writes, base in rows:
        print(f"{label:42} {seconds:9.4f} {writes:13d} {seconds / base:8.1f}x")
    print(
        f"sysfs writes, re-apply vs naive: {r['module_again_writes']}/{n}; "
        f"half drifted: {r['module_half_writes']}/{n} (only devices whose value differs are written)"
    )
    if opts.json:
        with open(opts.json, "w") as handle:
            json.dump(dict(results, devices=n, kernel=os.uname().release), handle, indent=2)
    if r["module_again_writes"] != 0 or r["module_half_writes"] != n // 2 or r["module_first_writes"] != n:
        raise SystemExit("unexpected write counts: the module must touch only devices whose value differs")


if __name__ == "__main__":
    main()
