"""cowfuzz's engine: programs, their execution, triage and search (see README, Architecture).

``fuzz`` and ``model`` are installed side by side; a project of the user's with a
top-level ``model`` package of its own would shadow the kernel model, so say so at
once rather than fail somewhere deep.
"""

from pathlib import Path as _Path

import model as _model

if _Path(_model.__file__).resolve().parent.parent != _Path(__file__).resolve().parent.parent:
    raise ImportError(f"cowfuzz: the module 'model' found first on sys.path is "
                      f"{_model.__file__}, not cowfuzz's kernel model; rename your own "
                      "'model' package or take its folder off sys.path")
