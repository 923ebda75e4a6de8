"""The kernel model: Linux's copy-on-write machinery as concurrent, checkable code.

``model`` never imports ``fuzz``. Its public surface:

* ``Kernel`` -- upstream Linux v7.0; variants subclass it (model/variants);
* ``Violation`` and its subclasses -- the oracles' verdicts (model/oracles/errors.py);
* ``get_variant(name)`` / ``VARIANTS`` -- the registry of designs; ``load_design(spec)``
  declares a design of your own.
"""

from model.oracles.errors import Violation
from model.kernel import Kernel
from model.variants import VARIANTS, get_variant, load_design

__all__ = ["Kernel", "Violation", "VARIANTS", "get_variant", "load_design"]
