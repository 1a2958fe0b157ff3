"""Sphinx configuration of novalet's documentation (doc/source).

Build: ``tox -e docs``, or ``sphinx-build -W --keep-going -b html doc/source
doc/build/html`` with ``doc/requirements.txt`` installed beside novalet.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

# Imported first: novalet selects oslo.service's threading backend on import,
# which it cannot do once oslo.messaging's options (the configuration
# reference) have selected eventlet.
import novalet  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
# The local extension that renders the programs' own --help (_ext/).
sys.path.insert(0, os.path.join(HERE, "_ext"))

project = "novalet"
author = "novalet maintainers"
copyright = "novalet maintainers; Apache-2.0"
try:
    release = metadata.version("novalet")
except metadata.PackageNotFoundError:  # the docs need novalet installed
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "oslo_config.sphinxext",
    "reno.sphinxext",
    "novalet_commands",
    "novalet_releases",
]

root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []
pygments_style = "sphinx"

# -- the API reference (autodoc) --------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The type hints name classes of the libraries novalet builds on; their own
# documentation is not fetched (the build runs offline), so a hint that
# cannot be linked is not a warning.
nitpicky = False

# -- intersphinx: offline; no inventories are fetched ---------------------------
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

# -- HTML -----------------------------------------------------------------------
html_theme = "alabaster"
html_title = "novalet %s" % release
html_static_path: list[str] = []
html_theme_options = {
    "description": "Remotable versioned objects and the control-plane "
                   "services built on them",
    "fixed_sidebar": True,
}
