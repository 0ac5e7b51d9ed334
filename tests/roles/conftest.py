"""Fixtures for role tests: run ansible-playbook from the project's venv against throwaway inventories.

These tests run real plays (local connection, no containers) and stop at the roles' preflight checks,
so they need no Docker engine.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def run_play(tmp_path):
    """Run a play with an inventory; return (rc, output)."""

    def _run(inventory, play, extra_vars=None):
        inv = tmp_path / "inventory.yml"
        inv.write_text(textwrap.dedent(inventory))
        pb = tmp_path / "play.yml"
        pb.write_text(textwrap.dedent(play))
        cfg = tmp_path / "ansible.cfg"
        cfg.write_text("[defaults]\nretry_files_enabled = false\n")
        collections = os.path.join(ROOT, ".cache", "collections")
        link = os.path.join(collections, "ansible_collections", "onmetal", "faas")
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.islink(link):
            os.symlink(ROOT, link)
        env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=collections,
            ANSIBLE_FORCE_COLOR="false",
            ANSIBLE_NOCOLOR="true",
            ANSIBLE_RETRY_FILES_ENABLED="false",
            ANSIBLE_CONFIG=str(cfg),
        )
        cmd = [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            str(inv),
            str(pb),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    return _run


LOCAL_INVENTORY = """
all:
  hosts:
    node:
      ansible_connection: local
"""


def preflight_only_play(role):
    """A play that runs only ``role``'s tasks/preflight.yml, with the distribution facts its checks read."""
    return f"""
- name: {role} preflight only
  hosts: all
  gather_facts: true
  gather_subset: ["!all", "!min", "distribution"]
  tasks:
    - name: Run the role's preflight checks
      ansible.builtin.include_role:
        name: onmetal.faas.{role}
        tasks_from: preflight.yml
"""


@pytest.fixture
def run_preflight(run_play):
    """Run only a role's preflight checks (``preflight_only_play``) on ``inventory``; return (rc, output)."""

    def _run(role, inventory, extra_vars=None):
        return run_play(inventory, preflight_only_play(role), extra_vars)

    return _run


@pytest.fixture
def render_role_template(run_play, tmp_path):
    """Render one of a role's templates as the role renders it (its defaults and vars, plus ``extra_vars``) to
    ``dest`` (default: a file under tmp_path named after the template); returns the path."""

    def _render(role, template, extra_vars=None, dest=None):
        role_dir = os.path.join(ROOT, "roles", role)
        dest = dest or tmp_path / template.removesuffix(".j2")
        play = f"""
- name: Render {template} with the role's defaults and vars
  hosts: all
  gather_facts: false
  vars_files:
    - {role_dir}/defaults/main.yml
    - {role_dir}/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: {role_dir}/templates/{template}
        dest: {dest}
        mode: "0644"
"""
        rc, out = run_play(LOCAL_INVENTORY, play, extra_vars)
        assert rc == 0, out
        return dest

    return _render


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_nginx(render_role_template, tmp_path):
    """Start a real nginx on loopback (plain HTTP on a free port, logs and pid under tmp_path) with gateway_nginx's own
    nginx.conf rendered with ``extra_vars`` on top; the role's ``__gateway_nginx_binary`` is a wrapper that runs that
    nginx with that configuration. Returns conf, binary, url and the variables it rendered with; nginx quits at
    teardown, also when the test left a configuration it refuses. The test's own skip mark says what it needs (root,
    nginx)."""
    binaries = []

    def _start(extra_vars):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        binary = tmp_path / "nginx"
        binary.write_text(f'#!/bin/sh\nexec {NGINX} -c {conf} "$@"\n')
        binary.chmod(0o755)
        rendered = {
            "gateway_nginx_tls_enabled": False,
            "gateway_nginx_listen_addresses": ["127.0.0.1"],
            "gateway_nginx_http_port": port,
            "gateway_nginx_access_log": str(tmp_path / "access.log"),
            "gateway_nginx_error_log": str(tmp_path / "error.log"),
            "__gateway_nginx_pid": str(tmp_path / "nginx.pid"),
            "__gateway_nginx_conf": str(conf),
            "__gateway_nginx_binary": str(binary),
            **extra_vars,
        }
        render_role_template("gateway_nginx", "nginx.conf.j2", rendered, dest=conf)
        subprocess.run([str(binary)], check=True, timeout=30)
        binaries.append(binary)
        return {"conf": conf, "binary": str(binary), "url": f"http://127.0.0.1:{port}", "vars": rendered}

    yield _start
    for binary in binaries:
        done = subprocess.run([str(binary), "-s", "quit"], capture_output=True, check=False, timeout=30)
        pid = tmp_path / "nginx.pid"
        if done.returncode != 0 and pid.exists():  # a test left a configuration nginx refuses to read
            os.kill(int(pid.read_text()), signal.SIGQUIT)


@pytest.fixture
def docker_on_path(tmp_path, monkeypatch):
    """Put a fake ``docker`` (the shell script ``text``) first on PATH for the plays the test runs."""

    def _install(text):
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        fake = bindir / "docker"
        fake.write_text(text)
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    return _install
