"""How a campaign ends: a finding reaches the disk at once, SIGTERM and SIGINT stop it
within seconds with nothing lost and nothing left behind, SIGKILL is recovered from by
the next run, --time bounds the whole run, and a campaign that ran nothing never
reports clean. Each test waits on the campaign's output or exit, never on a sleep."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.program.replay_token import parse_token
from fuzz.search.campaign import CampaignStats
from fuzz.search.minimizer import Failed, Minimizer
from model.variants import load_design
from tests.fuzzing import PLANTED, Fuzzing, fuzz_args, wait_group_gone

PLANTED_NAME = load_design(PLANTED).name


def crash_folders(folder: Path) -> list[Path]:
    crashes = folder / "crashes"
    return sorted(p for p in crashes.iterdir() if p.is_dir()) if crashes.is_dir() else []


def saved_signatures(folder: Path) -> set[str]:
    return {(p / "signature.txt").read_text().strip() for p in crash_folders(folder)}


def journaled(folder: Path) -> set[str]:
    out = set()
    for path in (folder / "campaign" / "found").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                out.add(json.loads(line)["signature"])
            except ValueError:
                pass                            # a line cut short by the kill
    return out


def assert_nothing_left(folder: Path, tmpdir: Path) -> None:
    """No scratch space, journal or temporary name anywhere: in the campaign folder, the
    crash folder, or TMPDIR."""
    campaign = folder / "campaign"
    assert not (campaign / "work").exists()
    assert list((campaign / "found").iterdir()) == []
    leftovers = [p for p in (folder / "crashes").rglob(".*") if p.name != ".lock"]
    leftovers += [p for p in (campaign / "queue").glob(".*")]
    assert leftovers == []
    assert list(tmpdir.iterdir()) == []


@pytest.fixture
def tmpdir_env(tmp_path):
    """A private TMPDIR for the campaign, to see what it leaves there."""
    from tests.fuzzing import ENV
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return scratch, {**ENV, "TMPDIR": str(scratch)}


@pytest.mark.slow
def test_a_finding_ends_the_slice_and_is_saved_at_once(tmp_path):
    """The slice is a minute long, yet the crash is on disk within seconds of the
    worker's finding; meta.json dates it inside the slice, and the worker journaled it."""
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", PLANTED, "--strategy",
                                            "random", "--seed", 1, "--time", 120, "--slice", 60,
                                            "--jobs", 1))
    line = fuzzing.wait_for(" CRASH ")
    seen_after = time.monotonic() - fuzzing.started
    assert seen_after < 60, "the crash waited for the end of its slice"
    folder = crash_folders(tmp_path)[0]
    meta = json.loads((folder / "meta.json").read_text())
    assert 0 <= meta["first_hit"]["seconds"] < seen_after
    assert meta["first_hit"]["execution"] >= 1
    assert (folder / "signature.txt").read_text().strip() in journaled(tmp_path)
    assert folder.name in line
    fuzzing.signal(signal.SIGTERM)
    assert fuzzing.finish(timeout=30) == 143


@pytest.mark.parametrize("strategy", ["random", pytest.param("coverage", marks=pytest.mark.slow)])
def test_sigterm_ends_a_campaign_within_seconds_with_everything_saved(tmp_path, tmpdir_env,
                                                                      strategy):
    scratch, env = tmpdir_env
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "cowpte-rfc2", "--strategy",
                                            strategy, "--seed", 1, "--time", 300, "--jobs", 2),
                      env=env)
    fuzzing.wait_for(" CRASH ")
    fuzzing.signal(signal.SIGTERM)
    assert fuzzing.finish(timeout=20) == 143, fuzzing.stderr
    assert fuzzing.out[-1].startswith("cowfuzz: DONE "), fuzzing.stdout
    assert "Traceback" not in fuzzing.stderr + fuzzing.stdout
    assert "SIGTERM: stopped" in fuzzing.stderr
    reported = {Path(line.rsplit(" -> ", 1)[1].strip()).name for line in fuzzing.out
                if " CRASH " in line}
    assert reported and reported == {p.name for p in crash_folders(tmp_path)}
    assert wait_group_gone(fuzzing), "a worker or libFuzzer outlived the campaign"
    assert_nothing_left(tmp_path, scratch)


@pytest.mark.slow
def test_ctrl_c_stops_every_process_of_the_campaign_quietly(tmp_path, tmpdir_env):
    """A terminal's Ctrl-C reaches the whole process group: workers, libFuzzer and the
    minimizer too. None of them prints a traceback."""
    scratch, env = tmpdir_env
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "cowpte-rfc2", "--seed", 2,
                                            "--time", 300, "--jobs", 2), env=env)
    fuzzing.wait_for(" CRASH ")
    fuzzing.wait_for(" NEW ")
    fuzzing.signal(signal.SIGINT, group=True)
    assert fuzzing.finish(timeout=20) == 130, fuzzing.stderr
    assert fuzzing.out[-1].startswith("cowfuzz: DONE ")
    assert "Traceback" not in fuzzing.stderr + fuzzing.stdout
    assert "KeyboardInterrupt" not in fuzzing.stderr
    assert wait_group_gone(fuzzing)
    assert_nothing_left(tmp_path, scratch)


@pytest.mark.slow
def test_after_sigkill_the_next_run_saves_what_workers_sent_and_cleans_up(tmp_path, tmpdir_env):
    scratch, env = tmpdir_env
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "cowpte-rfc2", "--strategy",
                                            "random", "--seed", 3, "--time", 300, "--jobs", 2),
                      env=env)
    fuzzing.wait_for(" CRASH ")
    fuzzing.signal(signal.SIGKILL)
    fuzzing.finish(timeout=20)
    assert wait_group_gone(fuzzing), "workers outlived their coordinator"
    sent = journaled(tmp_path)
    assert sent and (tmp_path / "campaign" / "work").exists()      # what the kill left
    again = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "cowpte-rfc2", "--strategy",
                                          "random", "--seed", 4, "--runs", 20), env=env)
    assert again.finish() in (0, 1), again.stderr
    assert sent <= saved_signatures(tmp_path)
    assert_nothing_left(tmp_path, scratch)


@pytest.mark.slow
def test_time_bounds_the_whole_campaign_minimization_included(tmp_path):
    """The README's campaign, 20 s: it finds and minimizes, and is over within 25 s."""
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "cowpte-rfc2", "--time", 20))
    status = fuzzing.finish(timeout=60)
    took = time.monotonic() - fuzzing.started
    assert status == 1, fuzzing.stderr
    assert took < 25, f"a 20 s campaign took {took:.1f} s"
    assert fuzzing.out[-1].startswith("cowfuzz: DONE 0:00:")


@pytest.mark.parametrize("flag", ["--time", "--slice", "--minimize-time"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5"])
def test_durations_must_be_finite_and_positive(tmp_path, capsys, flag, value):
    assert main([*fuzz_args(tmp_path), f"{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert f"{flag} must be a positive number of seconds" in err and err.count("\n") == 1
    assert not (tmp_path / "campaign").exists()


def test_a_campaign_that_ran_nothing_is_not_clean(tmp_path, capsys, monkeypatch):
    """Workers that never started (say --jobs 64 on two CPUs) make no clean verdict."""
    from fuzz.search import campaign
    monkeypatch.setattr(campaign.Campaign, "run", lambda self: CampaignStats(time.monotonic()))
    assert main([*fuzz_args(tmp_path), "--jobs", "64", "--time", "1"]) == 2
    err = capsys.readouterr().err
    assert "the campaign ran no program" in err and "nothing was tested" in err


def test_a_design_that_fails_every_slice_says_why_nothing_ran(tmp_path):
    """A design whose kernel cannot be built: each slice fails, the campaign runs out its
    time, and the last line names the failure instead of blaming a slow start."""
    design = tmp_path / "broken.py"
    design.write_text("from model.kernel import Kernel\n\n\nclass Broken(Kernel):\n"
                      "    name = 'broken'\n\n    def __init__(self, *args, **kwargs):\n"
                      "        raise RuntimeError('no kernel today')\n")
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--designs", f"{design}:Broken",
                                           "--variant", "broken", "--time", 3))
    assert fuzzing.finish(timeout=60) == 2
    assert "worker 0: RuntimeError: no kernel today" in fuzzing.stderr
    assert fuzzing.err[-1].rstrip() == ("cowfuzz: error: the campaign ran no program (every "
                                        "slice failed: RuntimeError: no kernel today); "
                                        "nothing was tested")
    assert "Traceback" not in fuzzing.stderr


def test_a_minimizer_that_dies_is_given_up_not_waited_out(tmp_path):
    text = (Path(__file__).parents[1] / "corpus" / "cowpte-rfc2" /
            "gup-fast-marks-shared-table.cow").read_text()
    minimizer = Minimizer("cowpte-rfc2", (), str(tmp_path), seconds=600)
    minimizer.add("sig", text, {})
    try:
        assert minimizer.poll(None) == [] and minimizer.running is not None
        minimizer.proc.kill()
        minimizer.proc.join()
        events = minimizer.poll(None)
        assert len(events) == 1 and isinstance(events[0], Failed)
        assert "died" in events[0].why and minimizer.pending == 0
    finally:
        minimizer.stop()


def test_a_minimization_never_starts_without_time_left(tmp_path):
    minimizer = Minimizer("cowpte-rfc2", (), str(tmp_path), seconds=60)
    minimizer.add("sig", "cowfuzz 1\n", {})
    assert minimizer.poll(1.0) == [] and minimizer.running is None and minimizer.proc is None
    assert minimizer.pending == 1


def test_the_minimizer_is_capped_by_the_time_left(tmp_path):
    source = Path(__file__).parents[1] / "corpus" / "cowpte-rfc2" / "gup-fast-marks-shared-table.cow"
    minimizer = Minimizer("cowpte-rfc2", (), str(tmp_path), seconds=600)
    minimizer.add("VM_BUG_ON:x", source.read_text(), {})
    try:
        minimizer.poll(30.0)
        assert minimizer.kill_at - time.monotonic() < 30.0 + 10.0
    finally:
        minimizer.stop()


@pytest.mark.slow
def test_crash_folders_are_world_readable(tmp_path):
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", PLANTED, "--strategy",
                                            "random", "--seed", 1, "--time", 60,
                                            "--stop-on-crash", "--minimize-time", 1))
    fuzzing.wait_for(" CRASH ")
    assert fuzzing.finish() == 1
    folder = crash_folders(tmp_path)[0]
    assert folder.stat().st_mode & 0o777 == 0o755
    for name in ("input.cow", "token.txt", "signature.txt"):
        assert (folder / name).stat().st_mode & 0o777 == 0o644, name
    token = (folder / "token.txt").read_text().strip()
    assert parse_token(token)[1] == PLANTED_NAME
