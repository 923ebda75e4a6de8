"""Campaigns on a Ray cluster: two Ray nodes on this machine (ray.cluster_utils.Cluster),
the head on 127.0.0.2 and a second node on 127.0.0.3, one CPU each, so each node runs
one worker actor. The cluster is this module's own: it is shut down with
``cluster.shutdown()`` (never ``ray stop``, which stops every cluster on the machine).
Skipped when Ray is not installed (pip install '.[ray]')."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzzing import Fuzzing, fuzz_args

CLUSTER_ONLY = pytest.mark.slow
#: the suite runs on several xdist workers; this module's tests share one worker, so
#: that a single cluster holds 127.0.0.2 and 127.0.0.3 at a time
pytestmark = pytest.mark.xdist_group("ray-cluster")


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster
    c = Cluster(initialize_head=True,
                head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.2"})
    try:
        c.second = c.add_node(num_cpus=1, node_ip_address="127.0.0.3")
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def complete_crash_folders(folder: Path) -> set[str]:
    """The names of the crash folders, each checked whole."""
    names = set()
    for crash in (folder / "crashes").iterdir():
        if crash.is_dir():
            assert {"signature.txt", "input.cow", "meta.json", "report.html"} <= \
                {p.name for p in crash.iterdir()}, crash
            names.add(crash.name)
    return names


def crash_lines(fuzzing: Fuzzing) -> set[str]:
    """The crash folders the CRASH lines name."""
    return {Path(line.rsplit("-> ", 1)[1].split()[0]).name
            for line in fuzzing.out if " CRASH " in line}


@CLUSTER_ONLY
def test_the_cli_on_two_nodes_finds_the_rfc2_race(tmp_path, cluster):
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--cluster", cluster.address,
                                           "--variant", "cowpte-rfc2", "--strategy", "random",
                                           "--seed", 1, "--time", 60, "--slice", 2,
                                           "--stop-on-crash", "--minimize-time", 10))
    assert fuzzing.finish(timeout=180) == 1, fuzzing.stderr
    first = fuzzing.stderr.splitlines()[0]
    assert "2 Ray actor(s) on 2 node(s) (127.0.0.2, 127.0.0.3)" in first, first
    found = crash_lines(fuzzing)
    assert found and found <= complete_crash_folders(tmp_path)
    assert ":cowpte-rfc2:" in next(line for line in fuzzing.out if " CRASH " in line)
    assert fuzzing.out[-1].startswith("cowfuzz: DONE ")


@CLUSTER_ONLY
def test_a_node_lost_mid_campaign_loses_no_crash_and_no_corpus_entry(tmp_path, cluster):
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--cluster", cluster.address,
                                           "--variant", "cowpte-rfc2", "--strategy", "random",
                                           "--seed", 2, "--time", 40, "--slice", 1,
                                           "--minimize-time", 5))
    # the budget leaves room for a loaded machine: a node lost after the campaign began
    # stopping is not a lost slice (under CI's load the first NEW came past 14 s)
    try:
        fuzzing.wait_for(" CRASH ", timeout=120)       # both nodes are fuzzing and finding
        fuzzing.wait_for(" NEW ", timeout=60)
        cluster.remove_node(cluster.second)
        assert fuzzing.finish(timeout=180) == 1, fuzzing.stderr
    finally:
        cluster.second = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    assert "worker 1 on 127.0.0.3 was lost" in fuzzing.stderr
    # every crash reported is saved whole, and nothing waits in a journal
    assert crash_lines(fuzzing) == complete_crash_folders(tmp_path)
    assert not list((tmp_path / "campaign" / "found").glob("*.jsonl"))
    # every corpus entry the coordinator took is in the queue
    done = fuzzing.out[-1]
    assert done.startswith("cowfuzz: DONE ")
    corpus = int(done.split("corpus ", 1)[1].split()[0].replace(",", ""))
    assert len(list((tmp_path / "campaign" / "queue").glob("*.cow"))) == corpus > 0
    state = json.loads((tmp_path / "campaign" / "state.json").read_text())
    assert state["lost_slices"] >= 1


def test_cluster_without_ray_is_one_line(tmp_path):
    fake = tmp_path / "noray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    import os
    from tests.fuzzing import ROOT
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"}
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--cluster", "auto", "--time", 5), env=env)
    assert fuzzing.finish(timeout=60) == 2
    assert fuzzing.stderr == "cowfuzz: --cluster needs Ray: pip install 'cowfuzz[ray]'\n"
