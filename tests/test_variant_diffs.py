"""Each built-in design's difference from upstream (model/variants/diff.py).

The stored docs/variants/<name>.diff must be what the code renders now: a
change to a variant, or to an upstream function a variant copied, fails here
until someone has looked at it (and carried an upstream fix over to the copy
where it applies) and regenerated the diffs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import model.variants.diff as diff
from model.kernel import Kernel
from model.variants import BUILTIN, VARIANTS
from model.variants.diff import REGENERATE, diff_path, documented, main, render

#: the checkout's stored diffs: the tests read these even when cowfuzz is installed
#: from a wheel (where model/ lives in site-packages, away from docs/)
CHECKOUT_DIFFS = Path(__file__).resolve().parents[1] / "docs" / "variants"


@pytest.fixture(autouse=True)
def _checkout_diffs(monkeypatch):
    monkeypatch.setattr(diff, "DIFF_DIR", CHECKOUT_DIFFS)


@pytest.mark.parametrize("cls", documented(), ids=lambda cls: cls.name)
def test_the_stored_diff_is_what_the_code_renders(cls):
    path = diff_path(cls.name)
    assert path.is_file(), f"{path} is missing: run {REGENERATE}"
    assert path.read_text() == render(cls), (
        f"{path} no longer matches the code. If an upstream function it overrides changed, "
        f"decide whether the variant's copy needs the same change; then run {REGENERATE} "
        f"and review the new diff")


def test_every_builtin_design_but_upstream_has_a_diff_and_nothing_else_does():
    names = {path.stem for path in diff.DIFF_DIR.glob("*.diff")}
    assert names == {cls.name for cls in documented()}
    assert BUILTIN - names == {"upstream"}


def test_a_historical_diff_shows_the_reverted_fix():
    text = render(VARIANTS["swapout-pinned-race"])
    assert "# fix: 6c287605fd56 " in text
    assert "--- model/rmap.py:RmapOps.folio_try_share_anon_rmap_pte\n" in text
    assert "-    if folio_maybe_dma_pinned(folio):\n-        return -EBUSY\n" in text


def test_inherited_overrides_are_shown_and_new_functions_listed():
    text = render(VARIANTS["clear-refs-pinned"])       # built on reuse-refcount
    assert "+++ model/variants/historical/clear_refs_pinned.py:ClearRefsPinned." \
           "clear_soft_dirty\n" in text
    assert "+++ model/variants/historical/reuse_refcount.py:ReuseRefcount.do_wp_page\n" in text
    text = render(VARIANTS["reuse-mapcount"])
    assert "#   model/variants/historical/common.py:_ReuseSwapPage.reuse_swap_page\n" in text
    assert "/dev/null" not in text


class _ReuseOnce(Kernel):
    name = "test-reuse-once"
    description = "reuse every anon page mapped once"

    def wp_can_reuse_anon_folio(self, folio, vma) -> bool:
        """decided by the mapcount alone"""
        return folio.mapcount == 1


class _BreakFirst(Kernel):
    name = "test-break-first"
    description = "wraps upstream's do_swap_page"

    async def do_swap_page(self, vmf) -> int:
        """do something, then upstream's"""
        return await super().do_swap_page(vmf)


def test_a_copy_is_diffed_against_the_whole_upstream_function():
    text = render(_ReuseOnce)
    assert text.startswith("# test-reuse-once: reuse every anon page mapped once\n")
    assert "--- model/memory.py:FaultOps.wp_can_reuse_anon_folio\n" in text
    assert "-    self.folio_unlock(folio)\n" in text
    assert "+    return folio.mapcount == 1\n" in text


def test_a_wrapper_is_diffed_against_upstreams_head_only():
    text = render(_BreakFirst)
    assert "_BreakFirst.do_swap_page calls upstream's through super()" in text
    assert "-async def do_swap_page(self, vmf: VmFault) -> int:\n" in text
    assert "+    return await super().do_swap_page(vmf)\n" in text
    assert "-    vma = vmf.vma\n" not in text


def test_check_and_write(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(diff, "DIFF_DIR", tmp_path / "variants")
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "gone.diff").write_text("# a design that no longer exists\n")
    assert main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "dirty-cow.diff is missing" in out and "gone.diff belongs to no built-in design" in out
    assert REGENERATE in out
    assert main(["--write"]) == 0
    assert main(["--check"]) == 0
    assert sorted(p.stem for p in (tmp_path / "variants").iterdir()) == \
        sorted(cls.name for cls in documented())
    (tmp_path / "variants" / "dirty-cow.diff").write_text("stale\n")
    assert main(["--check"]) == 1
    assert "dirty-cow.diff is out of date" in capsys.readouterr().out


def test_printing_a_design_by_name(capsys):
    assert main(["fork-no-early-cow"]) == 0
    assert capsys.readouterr().out == render(VARIANTS["fork-no-early-cow"])
    assert main(["no-such-design"]) == 2
    assert "unknown variant 'no-such-design'" in capsys.readouterr().err
