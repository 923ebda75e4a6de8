"""Programs: the pure data a run is made of, and how it is written, read and varied.

``program`` (Program, Op, Mapping, ThreadSpec), ``ops`` (the operation table),
``textcodec`` (the .cow form), ``bytecodec`` (the total byte form),
``replay_token`` (the one-line token), ``generate`` and ``mutate``.
Imports ``model`` only.
"""
