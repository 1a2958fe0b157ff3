"""Test helpers for app authors (the pytest plugin is the top-level module
``pytest_novalet``, also importable as ``novalet.testing.plugin``,
registered through the ``pytest11`` entry point; its fixtures are opt-in,
all named ``novalet_*``).

* ``object_data(namespace)``: the fingerprint of every object of one
  namespace (oslo.versionedobjects' ``ObjectVersionChecker``), to pin in a
  test; ``check_object_data(namespace, expected)`` fails naming each object
  whose fields or remotable methods changed without a version bump.
* ``check_releases(app_name)``: the app's newest release names every
  object of its namespace at the version the code has (a bumped object
  needs a new release, or ``auto`` would never send its new form).
* ``check_no_pending_changes(obj)``: after a ``create()``, ``save()`` or
  any remotable method that writes, nothing of ``obj`` (nested objects
  included) is left marked changed; use it in a test taking
  ``novalet_path``, so each path (local, in-process, RPC) is checked.
* ``isolated_registry()``: what a block registers or loads is forgotten
  after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from oslo_versionedobjects import base as ovo_base

from novalet import app
from novalet.objects import codec


def _version_checker(namespace: str) -> Any:
    # oslo.versionedobjects' fixture module needs ``fixtures``, a test-only
    # dependency (novalet's ``[test]`` extra): imported when a check runs.
    from oslo_versionedobjects import fixture as ovo_fixture

    return ovo_fixture.ObjectVersionChecker(obj_classes=codec.classes(namespace))


def object_data(namespace: str) -> dict[str, str]:
    """``{name: "version-fingerprint"}`` of every registered object of
    ``namespace`` (newest version of each)."""
    return _version_checker(namespace).get_hashes()  # type: ignore[no-any-return]


def check_object_data(namespace: str, expected: Mapping[str, str]) -> None:
    """Raise ``AssertionError`` unless ``namespace``'s objects have exactly
    the fingerprints ``expected`` (an object changed: bump its version,
    then its entry)."""
    checker = _version_checker(namespace)
    wanted, actual = checker.test_hashes(dict(expected))
    if wanted or actual:
        lines = ["%s: expected %s, now %s" % (name, wanted.get(name, "(absent)"),
                                              actual.get(name, "(absent)"))
                 for name in sorted(set(wanted) | set(actual))]
        raise AssertionError(
            "objects of %s changed without a version bump (or the expected "
            "data is stale):\n  %s" % (namespace, "\n  ".join(lines)))


def check_releases(app_name: str) -> None:
    """Raise ``AssertionError`` unless the loaded app ``app_name``'s last
    release (``App.releases``) names exactly its registered objects at
    their current versions."""
    declared = app.get(app_name)
    current = {name: found[0].VERSION
               for name, found in codec.classes(app_name).items()}
    release = declared.current_release
    newest = dict(declared.releases[release]) if release is not None else {}
    if newest != current:
        lines = ["%s: release %s says %s, the code has %s" % (
                     name, release, newest.get(name, "(absent)"),
                     current.get(name, "(absent)"))
                 for name in sorted(set(newest) | set(current))
                 if newest.get(name) != current.get(name)]
        raise AssertionError(
            "the newest release of %s does not match its objects (add a "
            "release naming the new versions):\n  %s"
            % (app_name, "\n  ".join(lines)))


def _pending(obj: Any, label: str) -> list[str]:
    found = []
    for name in sorted(obj.obj_what_changed()):
        value = getattr(obj, name, None) if obj.obj_attr_is_set(name) else None
        nested = (_pending(value, "%s.%s" % (label, name))
                  if isinstance(value, ovo_base.VersionedObject) else [])
        found.extend(nested or ["%s.%s" % (label, name)])
    return found


def check_no_pending_changes(obj: Any) -> None:
    """Raise ``AssertionError`` naming each field of ``obj`` (and of the
    objects it holds) still marked changed: a ``create()`` or ``save()``
    that wrote them must reset them (``obj_reset_changes``, or build the
    object from the row written: ``NovaletObject._from_db_object``), or
    the next ``save()`` sends them again."""
    if not isinstance(obj, ovo_base.VersionedObject):
        raise TypeError("check_no_pending_changes takes an object, not %s"
                        % type(obj).__name__)
    pending = _pending(obj, obj.obj_name())
    if pending:
        raise AssertionError(
            "%s has pending changes: %s (its method wrote them but left them "
            "marked changed: reset them, e.g. with obj_reset_changes())"
            % (obj.obj_name(), ", ".join(pending)))


class RegistryState:
    """What is registered and loaded at one moment: novalet's registry,
    oslo.versionedobjects' registry and the loaded apps. ``restore()`` puts
    exactly that back (classes are kept, never imported again)."""

    def __init__(self) -> None:
        self.by_key = {k: list(v) for k, v in codec._by_key.items()}
        self.ovo = {k: list(v) for k, v in
                    ovo_base.VersionedObjectRegistry.obj_classes().items()}
        self.loaded = app._loaded.copy()

    def restore(self) -> None:
        codec._by_key.clear()
        codec._by_key.update({k: list(v) for k, v in self.by_key.items()})
        ovo = ovo_base.VersionedObjectRegistry.obj_classes()
        ovo.clear()
        ovo.update({k: list(v) for k, v in self.ovo.items()})
        app._loaded.clear()
        app._loaded.update(self.loaded)
        codec.registry_changed()


@contextlib.contextmanager
def isolated_registry() -> Iterator[None]:
    """Classes registered and apps loaded inside the block are forgotten
    after it; what was registered before stays as it was."""
    state = RegistryState()
    try:
        yield
    finally:
        state.restore()


__all__ = ["RegistryState", "check_no_pending_changes", "check_object_data",
           "check_releases", "isolated_registry", "object_data"]
