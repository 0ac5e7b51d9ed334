"""The rolling_restart drill's leader accounting (tests/drills/files/rolling_watch.py): what counts as evidence
that the swarm has no leader, and how the seconds without one and the watch's resolution are measured."""

import os

import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "drills", "files", "rolling_watch.py")


@pytest.fixture(scope="module")
def watch(load_file):
    return load_file(PATH)


@pytest.mark.parametrize(
    ("code", "out", "kind"),
    [
        ("0", "Leader Reachable Reachable", "leader"),
        ("0", "Reachable Reachable Unreachable", "no_leader"),
        (
            "1",
            "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader.",
            "no_leader",
        ),
        (
            "1",
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            "down",
        ),
        ("1", "Error response from daemon: This node is not a swarm manager.", "down"),
        ("124", "", "down"),
    ],
)
def test_an_answer_is_evidence_of_a_leader_of_none_or_of_nothing(watch, code, out, kind):
    assert watch.answer_kind(code, out) == kind


def test_a_restarting_manager_that_does_not_answer_is_no_loss_of_the_leader(watch):
    evidence = [(0.2, "m1", "leader"), (0.5, "m2", "down"), (0.9, "m2", "down"), (1.0, "m3", "leader")]
    assert watch.leader_timeline(evidence, 1.5) == {
        "leader_answers": 2,
        "seconds_without_leader": 0,
        "longest_without_leader": 0,
        "longest_unconfirmed": 0.8,
    }


def test_seconds_without_a_leader_run_from_the_first_no_leader_answer_to_the_next_leader_answer(watch):
    evidence = [
        (0.5, "m1", "leader"),
        (2.0, "m2", "no_leader"),
        (2.3, "m3", "no_leader"),
        (2.6, "m1", "leader"),
        (3.0, "m2", "no_leader"),
    ]
    result = watch.leader_timeline(evidence, 4.0)
    assert result["seconds_without_leader"] == pytest.approx(1.6)  # 2.0-2.6, then 3.0 to the end
    assert result["longest_without_leader"] == pytest.approx(1.0)
    assert result["longest_unconfirmed"] == pytest.approx(2.1)  # 0.5 -> 2.6
