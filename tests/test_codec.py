"""The .cow text form, the total byte decoder and the replay token."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.program.bytecodec import decode, encodable, encode
from fuzz.hyp import programs
from fuzz.program.textcodec import ParseError, format_program, parse_program
from fuzz.program.replay_token import make_token, parse_token

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
labelled = st.tuples(programs(faults=True),
                     st.lists(st.tuples(st.sampled_from(["upstream", "cowpte-rfc2"]),
                                        st.sampled_from(["clean", "writable-shared"])),
                              max_size=2, unique_by=lambda e: e[0]),
                     st.none() | st.just("upstream"))


@pytest.mark.slow
@SETTINGS
@given(labelled)
def test_text_round_trip_is_exact(case):
    program, expect, found_on = case
    program = replace(program, expect=tuple(sorted(expect)), found_on=found_on)
    back = parse_program(format_program(program))
    assert back == program
    assert back.expect == program.expect and back.found_on == program.found_on


@pytest.mark.slow
@SETTINGS
@given(programs(faults=True))
def test_formatting_is_canonical(program):
    text = format_program(program)
    assert format_program(parse_program(text)) == text


def test_comments_and_blank_lines_do_not_matter():
    text = "cowfuzz 1\nmap 0 1 anon rw populate=write\nthread 0\n  write 0\n"
    noisy = ("# a note\ncowfuzz 1   # header\n\nmap 0 1 anon rw populate=write  # the page\n"
             "thread 0\n\n  write 0   # store\n")
    assert parse_program(noisy) == parse_program(text)
    assert format_program(parse_program(noisy)) == text


@SETTINGS
@given(st.binary(max_size=600))
def test_decoder_is_total_and_canonical(data):
    program = decode(data)                  # never raises
    again = decode(encode(program))
    assert again == program
    assert encode(again) == encode(program)
    assert parse_program(format_program(program)) == program


@pytest.mark.slow
@SETTINGS
@given(programs(faults=True))
def test_encode_then_decode_is_identity_within_bounds(program):
    assert encodable(program)
    assert decode(encode(program)) == program


@pytest.mark.slow
@SETTINGS
@given(programs(), st.sampled_from(["upstream", "planted-gup-fast-no-seqcount", "my.design_2-b"]))
def test_token_round_trip(program, variant):
    back, name, version = parse_token(make_token(program, variant))
    assert back == program and name == variant


@pytest.mark.parametrize("text, line, what", [
    ("cowfuzz 2\n", 1, "unsupported format version"),
    ("hello\n", 1, "first line must be"),
    ("cowfuzz 1\nmap 0 1 anon rw\nthread 0\n  write 99\n", 4, "va must be in 0..15"),
    ("cowfuzz 1\nthread 0\n  frobnicate 1\n", 3, "unknown operation 'frobnicate'"),
    ("cowfuzz 1\n  write 0\n", 2, "operation outside a thread"),
    ("cowfuzz 1\nthread 0\n  pin 0 0 rw\n", 3, "pin takes 5 arguments"),
    ("cowfuzz 1\nschedule 0 x\n", 2, "schedule choice must be an integer"),
    ("cowfuzz 1\nfound-on my.py:X\n", 2, "'my.py:X' is not a variant name"),
    ("cowfuzz 1\nexpect os:system clean\n", 2, "'os:system' is not a variant name"),
    ("cowfuzz 1\nexpect upstream sometimes\n", 2, "unknown verdict 'sometimes'"),
    ("cowfuzz 1\nexpect upstream clean\nexpect upstream isolation\n", 3,
     "a second expect line for upstream"),
    ("cowfuzz 1\nfound-on upstream\nfound-on dirty-cow\n", 3,
     "a second found-on line (the first is line 2)"),
    ("cowfuzz 1\nschedule 1\nschedule 0\n", 3, "a second schedule line"),
])
def test_parse_errors_name_file_and_line(text, line, what):
    with pytest.raises(ParseError) as info:
        parse_program(text, "bad.cow")
    message = str(info.value)
    assert message.startswith(f"bad.cow:{line}: ") and what in message
    assert "\n" not in message


def test_cli_bad_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.cow"
    bad.write_text("cowfuzz 1\nthread 0\n  write 0 0\n")
    proc = subprocess.run([sys.executable, "-m", "fuzz.cli", "run", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"{bad}:3: write takes 1 arguments (va), got 2\n"
    assert proc.stdout == ""
