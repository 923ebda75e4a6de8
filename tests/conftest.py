"""Test-session setup shared by every test module."""

from __future__ import annotations

import signal

# Some tests send SIGINT to a cowfuzz process, as Ctrl-C does. A shell starts background
# jobs with SIGINT ignored, exec keeps an ignored signal ignored, and Python then installs
# no handler: such a child would never see the Ctrl-C. Children of a process with a
# handler start with the default instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
