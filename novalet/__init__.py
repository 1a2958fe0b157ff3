"""novalet: remotable versioned objects and the control-plane services built on them.

Importing the package selects oslo.service's threading backend. This must happen
before anything imports ``oslo_messaging`` or ``oslo_versionedobjects.base`` (both
import oslo.service, which otherwise falls back to eventlet). novalet never
monkey-patches.
"""

from __future__ import annotations

import warnings

# Warnings other libraries raise while novalet imports them, filtered here by
# category and the module that raises them (nothing else is filtered):
# - eventlet stays installed as a dependency of the oslo libraries: futurist
#   (which oslo.service's threading backend uses) imports it, and eventlet
#   warns that it is deprecated (its own Warning subclass, attributed to the
#   importing module); oslo.utils warns the same of its eventletutils;
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated",
                        category=Warning, module=r"futurist\._utils$")
warnings.filterwarnings(
    "ignore", message=r"eventletutils module is deprecated",
    category=DeprecationWarning, module=r"oslo_utils\.eventletutils$")
# - eventlet imports dnspython, whose DNSSEC module names cryptography's DSA
#   key classes at import: cryptography 47 and newer deprecate DSA, so every
#   import of dnspython warns. novalet uses neither DNSSEC nor DSA.
try:
    from cryptography.utils import CryptographyDeprecationWarning as _CryptoDeprecation
except ImportError:  # pragma: no cover (cryptography is not installed)
    pass
else:
    warnings.filterwarnings("ignore", category=_CryptoDeprecation,
                            module=r"dns\.dnssecalgs\.")


from oslo_service import backend as _service_backend  # noqa: E402

try:
    _service_backend.init_backend(_service_backend.BackendType.THREADING)
except _service_backend.exceptions.BackendAlreadySelected:  # pragma: no cover
    # Another library's import chose first (oslo-config-generator loads
    # oslo.messaging before novalet): the services never get here.
    warnings.warn("oslo.service backend was selected before novalet's "
                  "import; novalet services need the threading backend",
                  stacklevel=2)

# The modules that warn at import are imported now, under the filters above:
# imported later (oslo.messaging's server module imports eventletutils), their
# warning would meet whatever filters the caller has then, e.g. pytest's
# ``-W error`` around a test, which puts the filters above behind its own.
import oslo_utils.eventletutils  # noqa: E402,F401

__all__: list[str] = []

from importlib import metadata as _metadata  # noqa: E402

try:
    #: The installed distribution's version (setup.cfg's ``version``).
    __version__: str = _metadata.version("novalet")
except _metadata.PackageNotFoundError:  # pragma: no cover (not installed)
    __version__ = "0+unknown"
