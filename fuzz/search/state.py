"""What a campaign remembers across runs: its counters and its coverage.

A campaign stopped and started again is one campaign: the status line, the
DONE line and plot_data.csv go on from where the last run left them.
Two files in the campaign folder, each written atomically:

* ``state.json``: seconds fuzzed and executions, slices (run, lost), the
  hits of every signature, nondeterministic replays, when the last new
  corpus entry came -- rewritten at every pulse (a few seconds);
* ``coverage.json``: the model lines covered and the interleaving features
  reached -- bounded by the model's size, rewritten at most once a minute
  (``COVERAGE_SECONDS``) and at the end. A run resumed after a SIGKILL may
  have lost the last minute of it; its workers find those again.

An unreadable file costs one warning line, and the campaign goes on from
zero for what it held.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fuzz.search.store import atomic_write

STATE_FILE = "state.json"
COVERAGE_FILE = "coverage.json"
#: seconds between two writes of coverage.json
COVERAGE_SECONDS = 60.0


@dataclass
class Counters:
    seconds: float = 0.0              # fuzzed by every run so far
    runs: int = 0                     # executions
    slices: int = 0
    lost_slices: int = 0
    nondeterministic: int = 0
    last_new: float = 0.0             # campaign seconds of the last new corpus entry
    hits: dict[str, int] = field(default_factory=dict)   # reports per signature
    resumed: int = 0                  # runs before this one


class CampaignState:
    def __init__(self, folder, warn=None):
        self.dir = Path(folder)
        self.warn = warn or (lambda text: None)
        self.coverage_written_at: float | None = None

    def load(self) -> tuple[Counters, set[str], set[int]]:
        counters = Counters()
        data = self._read(STATE_FILE)
        if data:
            try:
                counters = Counters(**{k: data[k] for k in asdict(counters) if k in data})
                counters.hits = {str(k): int(v) for k, v in counters.hits.items()}
            except (TypeError, ValueError, AttributeError):
                self.warn(f"warning: {self.dir / STATE_FILE}: unreadable, counters start "
                          "from zero")
                counters = Counters()
        lines, features = set(), set()
        cov = self._read(COVERAGE_FILE)
        if cov:
            try:
                lines = {str(x) for x in cov.get("lines", [])}
                features = {int(x) for x in cov.get("features", [])}
            except (TypeError, ValueError, AttributeError):
                self.warn(f"warning: {self.dir / COVERAGE_FILE}: unreadable, coverage starts "
                          "from zero")
                lines, features = set(), set()
        return counters, lines, features

    def _read(self, name: str):
        path = self.dir / name
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            self.warn(f"warning: {path}: unreadable, starting it from zero")
            return None
        return data

    def save_counters(self, counters: Counters) -> None:
        """OSError if the folder cannot be written."""
        atomic_write(self.dir / STATE_FILE, json.dumps(asdict(counters), sort_keys=True) + "\n",
                     durable=False)

    def save_coverage(self, lines, features, now: float, *, force: bool = False) -> None:
        """At most once every COVERAGE_SECONDS of ``now`` (a monotonic clock), or ``force``."""
        if not force and self.coverage_written_at is not None and \
                now - self.coverage_written_at < COVERAGE_SECONDS:
            return
        self.coverage_written_at = now
        atomic_write(self.dir / COVERAGE_FILE,
                     json.dumps({"lines": sorted(lines), "features": sorted(features)},
                                separators=(",", ":")) + "\n", durable=False)
