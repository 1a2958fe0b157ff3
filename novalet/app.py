"""Apps: the projects whose objects, tables and releases novalet serves.

An app is a ``novalet.app.App`` named by an entry point of the group
``novalet.apps`` (``myapp = myapp.novalet_app:APP``); novalet's own objects
are the app ``novalet``, declared the same way. ``load(names)`` reads the
entry points with stevedore and imports each app's object modules; an app
that cannot be imported, two apps with one name, or an app registering
objects outside its own namespace raise ``AppLoadError`` naming the app.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from oslo_config import cfg
from stevedore import extension

from novalet import exception

ENTRY_POINT_GROUP = "novalet.apps"
CORE = "novalet"

_C = TypeVar("_C", bound=type)


@dataclasses.dataclass(frozen=True)
class App:
    """One app.

    ``name``: its objects' ``OBJ_PROJECT_NAMESPACE`` and its migration
    lineage; ``object_modules``: imported (so registered) by the services
    that load it; ``migrations``: its alembic script location
    (``"package.module:directory"`` or a package path), None without tables;
    ``releases``: its own history, ``{release: {object: version}}``, oldest
    first (the last is the release this code runs; version caps of ``auto``
    go by this order);
    ``opts``: its oslo.config options, ``{group: [opt, ...]}``;
    ``exceptions``: the modules whose ``NovaletException`` subclasses cross
    RPC as themselves (class, message, kwargs) on every path, as
    ``novalet.exception``'s do (the core declares that one); any other
    error of the app reaches a remote caller as ``RemoteError``;
    ``host_scoped``: ``{table: column}``, the app's tables whose rows belong
    to a host: a caller signed with a host's key writes (inserts, updates,
    deletes; ORM or Core statements through ``novalet.db.writer``) only
    rows whose ``column`` is its own host name, checked in the statement
    that writes; an insert must set ``column`` to the caller's host; text
    SQL naming the table is refused to it. A refusal is ``Forbidden`` with
    nothing written. None for a column: a host writes no row of the table.
    Admins and local callers are not scoped; ``context.principal`` tells an
    app's method who called (``novalet.auth.Principal``).

    ``@APP.register`` on an object class (``register``) says the namespace
    once, for every object of the app.
    """

    name: str
    object_modules: Sequence[str] = ()
    migrations: str | None = None
    releases: Mapping[str, Mapping[str, str]] = dataclasses.field(
        default_factory=dict)
    opts: Mapping[str, Sequence[cfg.Opt]] = dataclasses.field(
        default_factory=dict)
    exceptions: Sequence[str] = ()
    host_scoped: Mapping[str, str | None] = dataclasses.field(
        default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise exception.AppLoadError(
                app=self.name, reason="the name must be a Python identifier")
        if isinstance(self.object_modules, str):
            raise exception.AppLoadError(
                app=self.name, reason="object_modules must be a list of "
                                      "module names, not one string")
        if isinstance(self.exceptions, str):
            raise exception.AppLoadError(
                app=self.name, reason="exceptions must be a list of module "
                                      "names, not one string")
        if not isinstance(self.host_scoped, Mapping) or not all(
                isinstance(table, str) and table
                and (column is None or isinstance(column, str) and column)
                for table, column in self.host_scoped.items()):
            raise exception.AppLoadError(
                app=self.name, reason="host_scoped must map table names to "
                                      "column names (or None)")

    def register(self, cls: _C) -> _C:
        """Class decorator: ``cls`` (a ``NovaletObject``, lists too)
        becomes an object of this app: its ``OBJ_PROJECT_NAMESPACE`` is set
        to the app's name and it is registered with
        ``NovaletObjectRegistry``. Raises ``AppLoadError`` for a class that
        is no ``NovaletObject`` or whose own body names another namespace.

        The objects sit above the apps: a ``NovaletObject`` class registers
        itself (``obj_register``), so this module imports none of them.
        """
        obj_register = (getattr(cls, "obj_register", None)
                        if isinstance(cls, type) else None)
        if not callable(obj_register):
            raise exception.AppLoadError(
                app=self.name, reason="register takes a NovaletObject class, "
                "not %r" % (cls,))
        own = vars(cls).get("OBJ_PROJECT_NAMESPACE", self.name)
        if own != self.name:
            raise exception.AppLoadError(
                app=self.name, reason="%s sets OBJ_PROJECT_NAMESPACE = %r; "
                "registered with app %s, it is %r" % (
                    cls.__name__, own, self.name, self.name))
        cls.OBJ_PROJECT_NAMESPACE = self.name  # type: ignore[attr-defined]
        obj_register()
        return cls

    @property
    def current_release(self) -> str | None:
        """The release this code runs: the last of ``releases``."""
        names = list(self.releases)
        return names[-1] if names else None

    def release_index(self, release: str) -> int | None:
        """``release``'s place in this app's history (0 = oldest); None for
        a release this code does not know (a newer one)."""
        names = list(self.releases)
        return names.index(release) if release in names else None

    @property
    def version_table(self) -> str:
        """Its alembic version table (the core keeps alembic's default)."""
        return "alembic_version" if self.name == CORE else (
            "alembic_version_%s" % self.name)


_lock = threading.Lock()
#: The loaded apps by name, in load order (the core first).
_loaded: dict[str, App] = {}
#: The object classes registered while ``_import`` imports an app's
#: modules (under ``_lock``); None outside one.
_registered_now: list[type] | None = None


def object_registered(cls: type) -> None:
    """Told by the objects' registry of every class it registers: while an
    app's object modules are imported, the class counts as one of that
    app's (``_import`` refuses one of another namespace). The objects sit
    above the apps: they report down, the apps never import them."""
    if _registered_now is not None:
        _registered_now.append(cls)


def _check_unique_entry_points() -> None:
    """Two distributions declaring one app name: the group lookup (hence
    stevedore) would silently keep one of them, so look at each."""
    from importlib import metadata

    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            source = "%s (%s, from %s)" % (ep.name, ep.value,
                                           dist.metadata["Name"])
            other = seen.setdefault(ep.name, source)
            if other != source and other.split(" (")[1] != source.split(" (")[1]:
                raise exception.AppLoadError(
                    app=ep.name, reason="two apps have this name: %s and %s"
                    % (other, source))


def _discover() -> dict[str, App]:
    """Every installed app by name; raises ``AppLoadError`` for an entry
    point that fails to import or is not an App, and for two entry points
    with one name."""
    _check_unique_entry_points()
    failures: list[tuple[str, BaseException]] = []

    def on_failure(manager: Any, entrypoint: Any, error: BaseException) -> None:
        failures.append((entrypoint.name, error))

    manager: extension.ExtensionManager[Any] = extension.ExtensionManager(
        ENTRY_POINT_GROUP, invoke_on_load=False,
        on_load_failure_callback=on_failure)
    if failures:
        name, error = failures[0]
        raise exception.AppLoadError(
            app=name, reason="entry point %s does not import: %s: %s"
            % (ENTRY_POINT_GROUP, type(error).__name__, error))
    found: dict[str, App] = {}
    sources: dict[str, str] = {}
    for ext in manager:
        app = ext.plugin
        source = "%s (%s)" % (ext.name, ext.entry_point.value)
        if not isinstance(app, App):
            raise exception.AppLoadError(
                app=ext.name, reason="entry point %s is a %s, not a "
                "novalet.app.App" % (ext.entry_point.value, type(app).__name__))
        for key in {ext.name, app.name}:
            if key in sources and sources[key] != source:
                raise exception.AppLoadError(
                    app=key, reason="two apps have this name: %s and %s"
                    % (sources[key], source))
        if ext.name != app.name:
            raise exception.AppLoadError(
                app=app.name, reason="its entry point is named %r" % ext.name)
        found[app.name] = app
        sources[app.name] = source
    return found


def load(names: Iterable[str] | None = None) -> list[App]:
    """Load the apps ``names`` (None or empty: every installed app; the core
    always) and import their object modules. Idempotent."""
    wanted = list(names or ())
    with _lock:
        installed = _discover()
        if CORE not in installed:
            raise exception.AppLoadError(
                app=CORE, reason="no %s entry point named %s: is novalet "
                "installed (pip install -e .)?" % (ENTRY_POINT_GROUP, CORE))
        missing = [n for n in wanted if n not in installed]
        if missing:
            raise exception.AppLoadError(
                app=missing[0], reason="[DEFAULT] apps names it but it is not "
                "installed (installed: %s)" % ", ".join(sorted(installed)))
        selected = [CORE] + sorted(n for n in (wanted or installed) if n != CORE)
        for name in selected:
            _import(installed[name])
        return [_loaded[n] for n in selected]


def register(app: App) -> None:
    """Load ``app`` without an entry point (tests, embedding)."""
    with _lock:
        current = _loaded.get(app.name)
        if current is not None and current is not app and current != app:
            raise exception.AppLoadError(
                app=app.name, reason="another app with this name is loaded")
        _import(app)


def _import(app: App) -> None:
    global _registered_now

    if app.name in _loaded:
        return
    registered: list[Any] = []
    _registered_now = registered
    try:
        for module in app.object_modules:
            try:
                importlib.import_module(module)
            except Exception as e:
                raise exception.AppLoadError(
                    app=app.name, reason="object module %s does not import: "
                    "%s: %s" % (module, type(e).__name__, e))
    finally:
        _registered_now = None
    # An app registers in its own namespace only: it can neither shadow
    # another app's object nor add to it.
    foreign = sorted("%s.%s" % (cls.OBJ_PROJECT_NAMESPACE, cls.obj_name())
                     for cls in dict.fromkeys(registered)
                     if cls.OBJ_PROJECT_NAMESPACE != app.name)
    if foreign:
        raise exception.AppLoadError(
            app=app.name, reason="its modules register objects outside its "
            "namespace: %s" % ", ".join(foreign))
    for module in app.exceptions:
        _check_exception_module(app, module)
    for other in _loaded.values():
        shared = sorted(set(other.host_scoped) & set(app.host_scoped))
        if shared:
            raise exception.AppLoadError(
                app=app.name, reason="app %s declares the host scope of %s "
                "already" % (other.name, ", ".join(shared)))
    for group, group_opts in app.opts.items():
        cfg.CONF.register_opts(list(group_opts), group=group)
    _loaded[app.name] = app
    _allow_exception_modules()


def _check_exception_module(app: App, module: str) -> None:
    """``module`` imports and defines a ``NovaletException`` subclass (a
    misspelt name would silently send the app's errors as ``RemoteError``)."""
    try:
        found = importlib.import_module(module)
    except Exception as e:
        raise exception.AppLoadError(
            app=app.name, reason="exceptions module %s does not import: %s: %s"
            % (module, type(e).__name__, e))
    if not any(isinstance(value, type)
               and issubclass(value, exception.NovaletException)
               and value.__module__ == module
               for value in vars(found).values()):
        raise exception.AppLoadError(
            app=app.name, reason="exceptions module %s defines no "
            "novalet.exception.NovaletException subclass" % module)


def exception_modules() -> list[str]:
    """The modules whose ``NovaletException`` subclasses cross RPC as
    themselves: every loaded app's ``exceptions``, in load order (read by
    ``novalet.rpc.errors.ALLOWED_EXMODS`` at each use)."""
    found: list[str] = []
    for loaded_app in list(_loaded.values()):
        found.extend(m for m in loaded_app.exceptions if m not in found)
    return found


def _allow_exception_modules() -> None:
    # rpc sits below the apps: it is handed the registry's list (once; it
    # reads it at every use, so apps loaded later, and a test's registry
    # put back, count at once).
    from novalet.rpc import errors

    errors.set_exception_modules(exception_modules)


def loaded() -> dict[str, App]:
    """The loaded apps by name (a copy)."""
    return dict(_loaded)


def current_releases() -> dict[str, str]:
    """``{app: release}`` this process runs, for every loaded app that
    declares releases: what a service records (``Service.app_releases``)."""
    return {name: loaded_app.current_release
            for name, loaded_app in _loaded.items()
            if loaded_app.current_release is not None}


def summary() -> str:
    """The loaded apps and the release each runs, for a service's start-up
    log line: ``novalet (release 3), leases (release 2)``."""
    return ", ".join(
        "%s (%s)" % (name, "release %s" % loaded_app.current_release
                     if loaded_app.current_release is not None
                     else "no releases")
        for name, loaded_app in _loaded.items())


def get(name: str) -> App:
    """The loaded app ``name``; ``AppLoadError`` when it is not loaded."""
    try:
        return _loaded[name]
    except KeyError:
        raise exception.AppLoadError(
            app=name, reason="not loaded (loaded: %s)" % ", ".join(_loaded))


def unload(name: str) -> None:
    """Forget a loaded app (tests); its classes stay registered."""
    with _lock:
        _loaded.pop(name, None)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """The options of every installed app but the core, for
    ``oslo-config-generator`` (namespace ``novalet.apps``)."""
    merged: dict[str, list[cfg.Opt]] = {}
    for app in _discover().values():
        for group, group_opts in app.opts.items():
            merged.setdefault(group, []).extend(group_opts)
    return sorted(merged.items())
