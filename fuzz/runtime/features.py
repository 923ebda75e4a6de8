"""Interleaving feedback: features beyond line coverage, computed per step.

Three families (KRACE/Snowboard-style, adapted to the model):

* point: a scheduling-point label was reached (point coverage);
* pair: two steps of *different* tasks changed the same object (a page, a
  PTE, a PTE table, a lock) one after the other -- the labels of both and
  the object's kind. This is the alias/interleaving coverage of KRACE;
* state: a PTE was written with an abstract state -- writable, the page
  PageAnonExclusive, mapped more than once, maybe pinned, the table shared
  -- at a given label.

Features are stable ints (crc32 of their description, never Python's
randomised hash), so corpus decisions replay in any process.
"""

from __future__ import annotations

import zlib

from model.page import GUP_PIN_COUNTING_BIAS

_ids: dict[tuple, int] = {}


def feature_id(key: tuple) -> int:
    fid = _ids.get(key)
    if fid is None:
        fid = _ids[key] = zlib.crc32(repr(key).encode())
    return fid


class FeatureCollector:
    """Collects the features of one execution from its steps, as they happen."""

    __slots__ = ("features", "points", "last")

    def __init__(self):
        self.features: set[int] = set()
        self.points: set[int] = set()     # the point features alone (point coverage)
        self.last: dict[tuple, tuple[int, str]] = {}

    def observe(self, step) -> None:
        label = step.label
        tid = step.tid
        feats = self.features
        point = feature_id(("point", label))
        feats.add(point)
        self.points.add(point)
        last = self.last
        for change in step.changes:     # (obj, field, index, old, new)
            obj = change[0]
            if change[1] == "pte":
                key = (id(obj), change[2])
                kind = "pte"
                new = change[4]
                if new is not None and new.present:
                    f = new.folio
                    feats.add(feature_id(("state", label, new.write, f.anon_exclusive,
                                          f.mapcount > 1, f._refcount >= GUP_PIN_COUNTING_BIAS,
                                          obj.refcount > 1)))
            else:
                key = (id(obj), None)
                kind = type(obj).__name__
            prev = last.get(key)
            if prev is not None and prev[0] != tid:
                feats.add(feature_id(("pair", prev[1], label, kind)))
            last[key] = (tid, label)
