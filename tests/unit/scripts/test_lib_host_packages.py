"""scripts/lib.sh picks the Debian packages of the set-up commands without touching an engine that is there.

``make lab`` used to install Debian's docker.io on every machine, and docker.io conflicts with Docker's docker-ce
and containerd.io: apt removes them to install it. These tests run lib.sh's own functions in bash with test
doubles first (and alone) on PATH, so nothing is installed and the machine's real engine is never asked:

- ``dpkg-query`` (test double): ``-W -f='${Status}' PKG`` prints ``install ok installed`` and exits 0 for the
  packages listed in FAKE_INSTALLED, else prints ``dpkg-query: no packages found matching PKG`` on stderr and
  exits 1, as dpkg-query does for a package it does not know;
- ``docker`` (test double): ``docker info`` exits 0 when FAKE_ENGINE_ANSWERS=1, else prints the CLI's
  ``Cannot connect to the Docker daemon`` error and exits 1;
- ``apt-get`` (test double): records its arguments in FAKE_APT_LOG and exits 0;
- ``dockerd`` (test double, only where a test asks for a static engine binary): never run, only found.
"""

import os
import shutil
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOLS = ["bash", "grep", "dirname", "cat", "date", "id", "ps"]

DPKG_QUERY = """#!/bin/bash
# Test double of dpkg-query (see the test module's docstring).
pkg="${@: -1}"
for p in $FAKE_INSTALLED; do
  if [ "$p" = "$pkg" ]; then printf 'install ok installed'; exit 0; fi
done
echo "dpkg-query: no packages found matching $pkg" >&2
exit 1
"""
DOCKER = """#!/bin/bash
# Test double of the docker CLI (see the test module's docstring).
if [ "$1" = info ] && [ "${FAKE_ENGINE_ANSWERS:-0}" = 1 ]; then echo 'Server Version: 28.0.0'; exit 0; fi
echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2
exit 1
"""
APT_GET = """#!/bin/bash
# Test double of apt-get (see the test module's docstring).
echo "$*" >>"$FAKE_APT_LOG"
"""


def _write(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def lib(tmp_path):
    """Run ``. scripts/lib.sh; <snippet>`` with only the doubles and a few real tools on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run these tests"
        os.symlink(real, bindir / tool)
    _write(bindir / "dpkg-query", DPKG_QUERY)
    _write(bindir / "docker", DOCKER)
    _write(bindir / "apt-get", APT_GET)
    apt_log = tmp_path / "apt.log"

    def _run(snippet, installed=(), engine_answers=False, static_dockerd=False):
        if static_dockerd:
            _write(bindir / "dockerd", "#!/bin/bash\n# Test double: a dockerd that is found, never run.\nexit 1\n")
        env = {
            "PATH": str(bindir),
            "HOME": str(tmp_path),
            "FAKE_INSTALLED": " ".join(installed),
            "FAKE_ENGINE_ANSWERS": "1" if engine_answers else "0",
            "FAKE_APT_LOG": str(apt_log),
        }
        proc = subprocess.run(
            [str(bindir / "bash"), "-c", f". {ROOT}/scripts/lib.sh; {snippet}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        apt = apt_log.read_text() if apt_log.exists() else ""
        return proc.stdout.split(), apt, proc.stderr

    return _run


def test_docker_ce_installed_but_stopped_is_started_not_replaced(lib):
    pkgs, _apt, _err = lib("host_packages", installed=["docker-ce", "docker-ce-cli", "containerd.io"])
    assert "docker.io" not in pkgs
    assert "iptables" not in pkgs
    state, _apt, _err = lib("engine_state", installed=["docker-ce", "containerd.io"])
    assert state == ["installed", "docker-ce"]


def test_running_engine_is_used_and_no_engine_package_installed(lib):
    pkgs, _apt, _err = lib("host_packages", engine_answers=True)
    assert "docker.io" not in pkgs
    assert lib("engine_state", engine_answers=True)[0] == ["running"]


def test_static_dockerd_binary_counts_as_an_engine(lib):
    pkgs, _apt, _err = lib("host_packages", static_dockerd=True)
    assert "docker.io" not in pkgs


def test_machine_without_engine_gets_debian_docker_io(lib):
    pkgs, _apt, _err = lib("host_packages")
    assert "docker.io" in pkgs and "iptables" in pkgs
    assert lib("engine_state")[0] == ["none"]


def test_qemu_only_for_the_kvm_scenario(lib):
    lab, _apt, _err = lib("host_packages")
    test, _apt, _err = lib("host_packages vm")
    assert not {"qemu-system-x86", "qemu-utils", "nginx"} & set(lab)
    assert {"qemu-system-x86", "qemu-utils", "nginx"} <= set(test)


def test_installed_packages_are_left_out(lib):
    pkgs, _apt, _err = lib("host_packages", installed=["debootstrap", "make"])
    assert "debootstrap" not in pkgs and "make" not in pkgs and "shellcheck" in pkgs


def test_ensure_host_packages_never_asks_apt_for_docker_io_next_to_docker_ce(lib):
    _out, apt, err = lib("ensure_host_packages", installed=["docker-ce", "containerd.io"])
    install = [line for line in apt.splitlines() if " install " in f" {line} "]
    assert install, apt
    assert "docker.io" not in install[0].split() and "qemu-system-x86" not in install[0].split()
    assert "docker-ce is installed but not running" in err


def test_ensure_host_packages_for_the_tests_adds_qemu_but_no_engine_when_one_answers(lib):
    _out, apt, err = lib("ensure_host_packages vm", engine_answers=True)
    words = apt.split()
    assert "qemu-system-x86" in words and "docker.io" not in words
    assert "a Docker engine answers: using it" in err
