"""Corpus upkeep: the greedy set cover, `cowfuzz corpus minimize` and `corpus stats`, and a
campaign that distills its queue when it passes its bound."""

from __future__ import annotations

import pytest

import random
import shutil
from pathlib import Path

from fuzz.cli import main
from fuzz.program.generate import random_program
from fuzz.program.textcodec import format_program
from fuzz.runtime.executor import execute
from fuzz.search.distill import Entry, distill_texts, greedy_cover
from fuzz.search.session import Session, SliceRequest
from fuzz.search.store import content_hash
from model.variants import get_variant
from tests.fuzzing import Fuzzing, fuzz_args

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = get_variant("upstream")


def entry(key, size, *features):
    return Entry(key, (size,), frozenset(features))


def test_greedy_cover_keeps_every_feature_with_the_fewest_entries():
    entries = [entry("a", 1, 1, 2), entry("b", 1, 3, 4), entry("big", 9, 1, 2, 3, 4),
               entry("c", 1, 5), entry("dup", 2, 5)]
    kept = [e.key for e in greedy_cover(entries)]
    assert kept == ["big", "c"]
    # ties: the smaller entry, then the key; what is covered already is not needed
    assert [e.key for e in greedy_cover(entries, covered={1, 2, 3, 4})] == ["c"]
    assert greedy_cover([entry("x", 1)]) == []


def test_greedy_cover_is_the_same_in_any_order():
    rng = random.Random(7)
    entries = [entry(f"e{i}", rng.randrange(5), *rng.sample(range(40), rng.randrange(1, 8)))
               for i in range(60)]
    kept = [e.key for e in greedy_cover(entries)]
    for _ in range(5):
        rng.shuffle(entries)
        assert [e.key for e in greedy_cover(entries)] == kept
    union = set().union(*(e.features for e in entries))
    assert set().union(*(e.features for e in greedy_cover(entries))) == union


def _programs(n, seed=1):
    rng = random.Random(seed)
    return [format_program(random_program(rng, max_threads=3, max_ops=5)) for _ in range(n)]


def test_distill_keeps_the_features_of_the_queue_and_the_seeds():
    texts = _programs(40)
    seeds = _programs(3, seed=2)
    kept = set(distill_texts(texts, seeds, UPSTREAM))
    assert kept and len(kept) < len(texts) and kept <= {content_hash(t) for t in texts}

    def features(ts):
        out = set()
        for t in ts:
            from fuzz.program.textcodec import parse_program
            out |= execute(parse_program(t), UPSTREAM, features=True).features
        return out
    assert features([t for t in texts if content_hash(t) in kept] + seeds) == \
        features(texts + seeds)


def test_corpus_minimize_and_stats(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus" / "upstream", corpus)
    (corpus / "copy.cow").write_text((corpus / "cowc-01-basic-cow-after-fork-base-page.cow")
                                     .read_text())
    before = sorted(p.name for p in corpus.glob("*.cow"))
    assert main(["corpus", "stats", str(corpus)]) == 0
    stats = capsys.readouterr().out
    assert f"{len(before)} .cow files" in stats and "distinct programs on upstream" in stats
    kept_line = next(line for line in stats.splitlines() if "minimized" in line)
    kept = int(kept_line.split()[1].replace(",", ""))

    out = tmp_path / "out"
    assert main(["corpus", "minimize", str(corpus), "-o", str(out)]) == 0
    assert f"kept {kept} of {len(before)} files" in capsys.readouterr().out
    assert len(list(out.glob("*.cow"))) == kept
    assert sorted(p.name for p in corpus.glob("*.cow")) == before    # -o leaves DIR alone
    again = tmp_path / "again"
    assert main(["corpus", "minimize", str(corpus), "-o", str(again)]) == 0
    assert sorted(p.name for p in again.glob("*.cow")) == sorted(p.name for p in out.glob("*.cow"))

    assert main(["corpus", "minimize", str(corpus)]) == 0            # in place
    capsys.readouterr()
    assert sorted(p.name for p in corpus.glob("*.cow")) == sorted(p.name for p in out.glob("*.cow"))
    assert main(["corpus", "minimize", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().endswith("nope: not a folder")


def test_a_reset_replaces_a_sessions_corpus_and_replays_in_the_background():
    session = Session(UPSTREAM, "upstream")
    texts = _programs(30)
    session.sync(texts, [], replay=True, reset=True)
    session.sync(texts[:5], [])                     # known by content hash: not taken twice
    assert len(session.corpus) == 30 and len(session.to_replay) == 30
    session.begin_slice(1, 0.5, None)
    while not session.done():
        pass
    assert 0 < session.replayed <= 30
    generation = session.corpus_generation
    session.sync(texts[:3], [], reset=True)
    assert len(session.corpus) == 3 and session.replayed == 0
    assert session.corpus_generation == generation + 1
    assert SliceRequest(0, 1, "random", "upstream", 0, 1.0, None, [], []).reset is False


@pytest.mark.slow
def test_a_campaign_distills_its_queue_past_its_bound(tmp_path):
    fuzzing = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "upstream", "--strategy",
                                           "random", "--seed", 1, "--time", 12, "--slice", 1,
                                           "--max-queue", 60))
    assert fuzzing.finish() == 0, fuzzing.stderr
    assert "cowfuzz: distilling the queue:" in fuzzing.stderr
    line = next(s for s in fuzzing.err if "distilled the queue" in s)
    before, after = (int(x.replace(",", "")) for x in
                     line.split("the queue: ", 1)[1].split(" entries")[0].split(" -> "))
    assert after < before
    done = fuzzing.out[-1]
    corpus = int(done.split("corpus ", 1)[1].split()[0].replace(",", ""))
    assert len(list((tmp_path / "campaign" / "queue").glob("*.cow"))) == corpus


@pytest.mark.slow
def test_a_restart_past_the_bound_fuzzes_from_the_seeds_while_it_distills(tmp_path):
    args = fuzz_args(tmp_path, "--variant", "upstream", "--strategy", "random", "--seed", 1,
                     "--slice", 1)
    first = Fuzzing(tmp_path, *args, "--time", 6)
    assert first.finish() == 0, first.stderr
    queued = len(list((tmp_path / "campaign" / "queue").glob("*.cow")))
    again = Fuzzing(tmp_path, *args, "--time", 6, "--max-queue", 20)
    assert again.finish() == 0, again.stderr
    err = again.stderr
    assert f"distilling the queue: {queued:,} entries" in err
    assert err.index("distilling the queue") < err.index("fuzzing: first executions")
