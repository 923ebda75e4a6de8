"""Static checks of the model's source: what the runtime relies on without parsing strings."""

from __future__ import annotations

import ast
from pathlib import Path

import model

MODEL = Path(model.__file__).resolve().parent


def _log_calls():
    for path in sorted(MODEL.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("log", "log_at") and len(node.args) >= 2:
                yield path.relative_to(MODEL.parent), node


def test_every_logged_field_is_a_plain_name():
    """A change names its field plainly and its element by index (model/changes.py): a
    field spelt "pte[5]" would hide the change from the oracles keyed on "pte"."""
    bad = []
    for where, call in _log_calls():
        field = call.args[1]
        plain = isinstance(field, ast.Constant) and isinstance(field.value, str) and \
            not any(c in field.value for c in "[]#")
        if not plain:
            bad.append(f"{where}:{call.lineno}: {ast.unparse(call)}")
    assert not bad, "log fields must be plain names (use log_at for an element):\n" + \
        "\n".join(bad)
