"""``novalet.db.reader`` / ``novalet.db.writer``: oslo.db enginefacade
transactions for apps' remotable methods, on novalet's one database.

Either a decorator (the context is the first argument, after ``self`` or
``cls``; its ``session`` is the transaction's) or a context manager::

    with novalet.db.writer.using(ctxt) as session:
        session.add(row)

Both pass the no-database guard first: in a blocked process (a compute-like
agent) they raise ``DBNotAllowed``, except while this thread dispatches for
an in-process conductor.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Transaction:
    """One enginefacade mode (``reader`` or ``writer``), resolved on each
    use: ``novalet.db.api.configure()`` may replace the engine facade."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def _factory(self) -> Any:
        from novalet.db import engine

        return getattr(engine._get_manager(), self.mode)

    @contextlib.contextmanager
    def using(self, context: Any) -> Iterator[Any]:
        """``with ...using(ctxt) as session``: a transaction (joined if one
        of this context is already open)."""
        from novalet import db
        from novalet.db import api

        db.check_access("%s.using" % self.mode)
        with api.translate_errors(), self._factory().using(context) as session:
            yield session

    def __call__(self, fn: F) -> F:
        params = list(inspect.signature(fn).parameters)
        index = 1 if params and params[0] in ("self", "cls") else 0

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            context = args[index] if len(args) > index else kwargs["context"]
            with self.using(context):
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]


reader = Transaction("reader")
writer = Transaction("writer")
