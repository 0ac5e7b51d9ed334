"""quorum_lost recognises the engine's leader-less errors; quorum_message names the manager count and the
(N/2)+1 managers the swarm needs, from the engine's /info answer when there is one."""

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import quorum_lost, quorum_message

# What a manager answers at once when Raft has no leader (docker 20.10 to 26).
NO_LEADER = (
    "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. It's possible "
    "that too few managers are online. Make sure more than half of the managers are online."
)
# What a manager answers after the engine's own deadline while an election cannot complete.
DEADLINE = "Error response from daemon: rpc error: code = DeadlineExceeded desc = context deadline exceeded"


def _info(managers, addrs):
    return {
        "Swarm": {"Managers": managers, "RemoteManagers": [{"NodeID": f"n{i}", "Addr": a} for i, a in enumerate(addrs)]}
    }


@pytest.mark.parametrize(
    "text", [NO_LEADER, DEADLINE, f"Docker engine error: {NO_LEADER}", "x context deadline exceeded"]
)
def test_leaderless_errors_are_recognised(text):
    assert quorum_lost(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Error response from daemon: No such service: web",
        'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" or '
        '"docker swarm join" to connect this node to swarm and try again.',
        "Error response from daemon: rpc error: code = Unavailable desc = connection error",
        "update out of sequence",
        "The swarm has a leader",
    ],
)
def test_unrelated_errors_are_not_quorum_loss(text):
    assert quorum_lost(text) is False


def test_three_managers_need_two():
    msg = quorum_message(NO_LEADER, _info(3, ["10.0.0.3:2377", "10.0.0.1:2377", "10.0.0.2:2377"]))
    assert (
        "The swarm has 3 manager(s) (10.0.0.1:2377, 10.0.0.2:2377, 10.0.0.3:2377) and needs 2 ((N/2)+1) of them "
        "online; containers that run keep running." in msg
    )


def test_five_managers_need_three():
    addrs = [f"10.0.0.{i}:2377" for i in range(1, 6)]
    msg = quorum_message(DEADLINE, _info(5, addrs))
    assert f"The swarm has 5 manager(s) ({', '.join(addrs)}) and needs 3 ((N/2)+1) of them online" in msg


@pytest.mark.parametrize(("managers", "need"), [(1, 1), (2, 2), (4, 3), (6, 4), (7, 4)])
def test_need_is_a_strict_majority(managers, need):
    addrs = [f"10.0.1.{i}:2377" for i in range(managers)]
    msg = quorum_message(NO_LEADER, _info(managers, addrs))
    assert f"The swarm has {managers} manager(s) (" in msg
    assert f"and needs {need} ((N/2)+1) of them online" in msg


def test_managers_zero_counts_the_remote_managers():
    # Without a leader the engine may report Managers=0 while it still lists the managers it knows of.
    msg = quorum_message(NO_LEADER, _info(0, ["10.0.0.2:2377", "10.0.0.1:2377", "10.0.0.3:2377"]))
    assert "The swarm has 3 manager(s) (10.0.0.1:2377, 10.0.0.2:2377, 10.0.0.3:2377) and needs 2 ((N/2)+1)" in msg


def test_missing_managers_key_counts_the_remote_managers():
    msg = quorum_message(NO_LEADER, {"Swarm": {"RemoteManagers": [{"Addr": "a:2377"}, {"Addr": "b:2377"}]}})
    assert "The swarm has 2 manager(s) (a:2377, b:2377) and needs 2 ((N/2)+1)" in msg


def test_managers_count_wins_over_a_shorter_list():
    # The engine's count is used when it has one, even when it knows fewer addresses.
    msg = quorum_message(NO_LEADER, _info(5, ["10.0.0.1:2377"]))
    assert "The swarm has 5 manager(s) (10.0.0.1:2377) and needs 3 ((N/2)+1)" in msg


def test_manager_without_address_is_shown_as_question_mark():
    msg = quorum_message(NO_LEADER, {"Swarm": {"Managers": 0, "RemoteManagers": [{"NodeID": "x"}]}})
    assert "The swarm has 1 manager(s) (?) and needs 1 ((N/2)+1)" in msg


@pytest.mark.parametrize("info", [None, {}, {"Swarm": None}, {"Swarm": {}}, {"Swarm": {"Managers": 0}}])
def test_without_counts_the_rule_is_stated(info):
    msg = quorum_message(NO_LEADER, info)
    assert "A swarm of N managers needs (N/2)+1 of them online; containers that run keep running." in msg
    assert "The swarm has" not in msg
    assert "manager(s)" not in msg


def test_message_quotes_the_error_and_gives_the_fix():
    msg = quorum_message(f"  {NO_LEADER}\n", None)
    assert msg.startswith(
        "swarm quorum lost: the managers have no leader, so the swarm refuses every management operation "
        f"({NO_LEADER})."
    )
    assert "Fix: start the managers that are down (their hosts and docker engines) and re-run." in msg
    assert "'docker swarm init --force-new-cluster --advertise-addr <its address>'" in msg
    assert msg.endswith("then re-run the playbook to rejoin the others.")
