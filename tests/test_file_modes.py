"""What the campaign writes has one mode, whatever the umask and whichever way it was
written: 0644 files, 0755 folders (temporary files start private and are renamed)."""

from __future__ import annotations

import os

from fuzz.search.store import Corpus, CrashStore, atomic_write


def mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_crash_folders_and_corpus_entries_are_0644_in_0755(tmp_path):
    old = os.umask(0o077)
    try:
        store = CrashStore(tmp_path / "crashes")
        folder = store.save_new("VM_BUG_ON:upstream:f:m", {"input.cow": "cowfuzz 1\n",
                                                            "trace.txt": "x\n"})
        store.update("VM_BUG_ON:upstream:f:m", {"repro.cow": "cowfuzz 1\n", "trace.txt": "y\n"})
        corpus = Corpus(tmp_path / "corpus", tmp_path / "campaign" / "queue")
        assert corpus.add("cowfuzz 1\n")
        atomic_write(tmp_path / "out" / "min.cow", "cowfuzz 1\n")
    finally:
        os.umask(old)
    assert mode(folder) == 0o755
    assert {p.name: mode(p) for p in folder.iterdir()} == {
        "signature.txt": 0o644, "input.cow": 0o644, "trace.txt": 0o644, "repro.cow": 0o644}
    assert [mode(p) for p in (tmp_path / "campaign" / "queue").iterdir()] == [0o644]
    assert mode(tmp_path / "out" / "min.cow") == 0o644
