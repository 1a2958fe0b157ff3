"""novalet: remotable versioned objects and the control-plane services built on them.

Importing the package selects oslo.service's threading backend. This must happen
before anything imports ``oslo_messaging`` or ``oslo_versionedobjects.base`` (both
import oslo.service, which otherwise falls back to eventlet). novalet never
monkey-patches.
"""

from __future__ import annotations

import warnings

# eventlet stays installed as a dependency of the oslo libraries and warns when
# it is imported; these two warnings are expected, nothing else is filtered.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings(
    "ignore", message=r"eventletutils module is deprecated",
    category=DeprecationWarning)


from oslo_service import backend as _service_backend  # noqa: E402

try:
    _service_backend.init_backend(_service_backend.BackendType.THREADING)
except _service_backend.exceptions.BackendAlreadySelected:  # pragma: no cover
    # Another library's import chose first (oslo-config-generator loads
    # oslo.messaging before novalet): the services never get here.
    warnings.warn("oslo.service backend was selected before novalet's "
                  "import; novalet services need the threading backend",
                  stacklevel=2)

__all__: list[str] = []
