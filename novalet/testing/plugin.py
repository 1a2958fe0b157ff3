"""The ``novalet.testing`` pytest plugin, by its name inside the package.

pytest loads the plugin from the top-level module ``pytest_novalet`` (entry
point ``pytest11``: ``novalet``): importing anything inside the ``novalet``
package first imports novalet itself (oslo.service's backend, eventlet, ...),
which an unrelated project's test run with novalet installed must not pay
for. This module gives conftests the same names (``ConfOverrides``).
"""

from __future__ import annotations

from pytest_novalet import DEFAULT_TRANSPORT_URL, PATHS, ConfOverrides

__all__ = ["DEFAULT_TRANSPORT_URL", "PATHS", "ConfOverrides"]
