"""The one-line replay token, and the model version it is bound to.

    cowfuzz1:<model version>:<variant>:<program>

The program is its canonical .cow text, zlib-compressed and base64url-
encoded, so a token is one copy-pasteable line. The model version is a
hash of the model's source: a token replays bit for bit on the same model
version, and ``cowfuzz run`` warns when the versions differ. A token is
data from someone else: it decompresses to at most ``MAX_INPUT_BYTES``
(a zlib bomb stops there) and names its design by name only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from functools import lru_cache
from pathlib import Path

from fuzz.program.program import MAX_INPUT_BYTES
from fuzz.program.textcodec import FORMAT_VERSION, format_program, parse_program
from model.variants import is_design_name

PREFIX = f"cowfuzz{FORMAT_VERSION}"


@lru_cache(maxsize=1)
def model_version() -> str:
    """sha256 of model/*.py (sorted), first 12 hex digits."""
    import model
    root = Path(model.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def make_token(program, variant: str) -> str:
    text = format_program(program).encode()
    blob = base64.urlsafe_b64encode(zlib.compress(text, 9)).decode().rstrip("=")
    return f"{PREFIX}:{model_version()}:{variant}:{blob}"


class TokenError(ValueError):
    pass


def parse_token(token: str):
    """-> (program, variant, model version). Raises TokenError."""
    if len(token) > 2 * MAX_INPUT_BYTES:
        raise TokenError(f"the token is over the size limit ({2 * MAX_INPUT_BYTES:,} characters)")
    parts = token.strip().split(":")
    if len(parts) < 4 or parts[0] != PREFIX:
        raise TokenError(f"not a cowfuzz replay token (expected {PREFIX}:<version>:<variant>:...)")
    version, blob = parts[1], parts[-1]
    variant = ":".join(parts[2:-1])
    if not is_design_name(variant):
        raise TokenError("the token's variant is not a variant name (a token names a design "
                         "by its registered name only)")
    try:
        packed = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        inflate = zlib.decompressobj()
        data = inflate.decompress(packed, MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES or inflate.unconsumed_tail:
            raise TokenError(f"the token's program is over the size limit of a program "
                             f"({MAX_INPUT_BYTES:,} bytes)")
        if not inflate.eof:
            raise TokenError("corrupt replay token: it is cut short (copy the whole line)")
        text = data.decode()
    except (binascii.Error, zlib.error, UnicodeDecodeError) as exc:
        raise TokenError(f"corrupt replay token: {exc}") from None
    return parse_program(text, "<token>"), variant, version


def is_token(s: str) -> bool:
    return s.startswith(PREFIX + ":")
