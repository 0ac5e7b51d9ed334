"""The gateway firewall script (roles/openfaas/templates/gateway-firewall.sh.j2), rendered as the role renders it
and run against real iptables in a network namespace of its own: the managers' addresses are let in before the
DROP (their nginx falls back to this gateway while its own is down), a second run changes nothing, check mode
reports without touching the chain, a changed manager list rewrites the rules in order, --remove lifts them.

Before: one DROP for every address on the public interface, so nginx on a manager whose gateway was down (an engine
restart) could not reach another manager's gateway, and the rolling restart drill lost requests.
"""

import os
import shlex
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMENT = "onmetal.faas openfaas gateway is reached through nginx only"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("unshare"),
    reason="needs root, iptables and unshare(1) for a network namespace of its own",
)


@pytest.fixture
def render(render_role_template):
    """The script as the role renders it, with the managers as `docker node inspect` lists them."""

    def _render(path, managers):
        extra = {
            "openfaas_public_interface": "eth-pub",
            "__openfaas_fw_managers": {"stdout_lines": [f"{addr}:2377" for addr in managers]},
        }
        return str(render_role_template("openfaas", "gateway-firewall.sh.j2", extra, dest=path))

    return _render


def run_steps(steps):
    """Run shell steps in one new network namespace; returns [(output of the step, our rules after it)]."""
    script = ["iptables -N DOCKER-USER", "iptables -A DOCKER-USER -j RETURN"]
    for step in steps:
        script += [
            "echo '@@step'",
            f'{step} 2>&1; echo "rc=$?"',
            "echo '@@rules'",
            f"iptables -S DOCKER-USER | grep -F {shlex.quote(COMMENT)} | sed 's/ -m comment.*-j / -j /'",
        ]
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", "\n".join(script)], capture_output=True, text=True, timeout=60, check=True
    )
    results = []
    for chunk in done.stdout.split("@@step\n")[1:]:
        output, _sep, rules = chunk.partition("@@rules\n")
        results.append((output.strip(), rules.strip().splitlines()))
    return results


def test_managers_are_let_in_before_the_drop_and_a_second_run_changes_nothing(render, tmp_path):
    first = render(tmp_path / "a.sh", ["10.0.0.3", "10.0.0.2", "[fd00::3]"])
    second = render(tmp_path / "b.sh", ["10.0.0.3", "10.0.0.4"])
    steps = run_steps(
        [
            f"sh {first} --check",
            f"sh {first}",
            f"sh {first} --apply",
            f"sh {second} --check",
            f"sh {second}",
            f"sh {second} --remove",
            f"sh {second} --remove",
        ]
    )
    check, apply, again, check2, apply2, remove, remove2 = steps
    assert check[0].startswith("changed: no rule -> RETURN:10.0.0.2:eth-pub:8080 RETURN:10.0.0.3") and check[1] == []
    wanted = [
        "-A DOCKER-USER -s 10.0.0.2/32 -i eth-pub -p tcp -m tcp --dport 8080 -j RETURN",
        "-A DOCKER-USER -s 10.0.0.3/32 -i eth-pub -p tcp -m tcp --dport 8080 -j RETURN",
        "-A DOCKER-USER -i eth-pub -p tcp -m tcp --dport 8080 -j DROP",
    ]
    assert apply[0].startswith("changed: no rule -> ") and apply[0].endswith("rc=0") and apply[1] == wanted
    assert again[0].startswith("unchanged: RETURN:10.0.0.2") and again[1] == wanted
    assert check2[0].startswith("changed: RETURN:10.0.0.2") and check2[1] == wanted  # check mode touched nothing
    assert apply2[1] == [wanted[1], wanted[1].replace("10.0.0.3", "10.0.0.4"), wanted[2]]
    assert remove[0].startswith("changed: RETURN:10.0.0.3") and remove[1] == []
    assert remove2[0].startswith("unchanged: no rule")


def test_without_managers_the_port_is_dropped_for_everyone(render, tmp_path):
    alone = render(tmp_path / "alone.sh", [])
    ((output, rules),) = run_steps([f"sh {alone}"])
    assert output.endswith("rc=0")
    assert rules == ["-A DOCKER-USER -i eth-pub -p tcp -m tcp --dport 8080 -j DROP"]


def test_a_drop_put_first_by_hand_is_put_back_after_the_managers(render, tmp_path):
    script = render(tmp_path / "s.sh", ["10.0.0.2"])
    by_hand = (
        f"iptables -I DOCKER-USER -i eth-pub -p tcp --dport 8080 -m comment --comment {shlex.quote(COMMENT)} -j DROP"
    )
    _first, (moved, rules) = run_steps([f"sh {script}", f"{by_hand}; sh {script}"])
    assert moved.startswith("changed: DROP::eth-pub:8080 RETURN:10.0.0.2:eth-pub:8080 DROP::eth-pub:8080 -> ")
    assert rules == [
        "-A DOCKER-USER -s 10.0.0.2/32 -i eth-pub -p tcp -m tcp --dport 8080 -j RETURN",
        "-A DOCKER-USER -i eth-pub -p tcp -m tcp --dport 8080 -j DROP",
    ]


def test_check_mode_on_a_host_without_the_engine_says_what_it_would_add(render, tmp_path):
    script = render(tmp_path / "s.sh", ["10.0.0.2"])
    done = subprocess.run(
        ["unshare", "-n", "sh", script, "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith(
        "changed: no DOCKER-USER chain yet (the engine creates it); would add: RETURN:10.0.0.2"
    )
    bad = subprocess.run(["sh", script, "--bogus"], capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "usage:" in bad.stderr
