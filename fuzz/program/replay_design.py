"""Which design an input replays on: one rule for every command.

The first of these that applies:

1. the design the user gives (``--variant``);
2. the design a replay token names (a token is a program on one design);
3. when every recorded verdict is checked (``cowfuzz run``), each design the
   program's ``expect`` lines name, in the file's order;
4. the design it was found on (its ``found-on`` line);
5. the design of its first ``expect`` line;
6. ``upstream``.

``cowfuzz minimize``, ``explore``, ``report`` and ``corpus add`` take one
design (rules 1, 2, 4, 5, 6); ``cowfuzz run`` checks each expectation
(rules 1, 2, 3, then 4-6 for a program without any).
"""

from __future__ import annotations

DEFAULT = "upstream"


def replay_designs(program, given: str | None = None, token_variant: str | None = None, *,
                   every_expected: bool = False) -> list[str]:
    """The design names ``program`` replays on, by the rule above."""
    if given:
        return [given]
    if token_variant:
        return [token_variant]
    if every_expected and program.expect:
        return [name for name, _verdict in program.expect]
    if program.found_on:
        return [program.found_on]
    if program.expect:
        return [program.expect[0][0]]
    return [DEFAULT]


def replay_design(program, given: str | None = None, token_variant: str | None = None) -> str:
    """The one design ``program`` replays on (rules 1, 2, 4, 5, 6)."""
    return replay_designs(program, given, token_variant)[0]
