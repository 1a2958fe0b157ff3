"""Service liveness: heartbeats (``join``/``leave``) and ``is_up``.

``API(conf)`` is the public surface; drivers (``db``, ``tooz``) live in
``novalet.servicegroup.drivers`` and load by name.
"""

from __future__ import annotations

from novalet.servicegroup.api import API, check_report_interval, load_driver

__all__ = ["API", "check_report_interval", "load_driver"]
