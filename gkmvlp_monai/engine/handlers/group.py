"""Attach a list of handlers as one: a bundle's task handlers in their place in the base config's list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ignite.engine import Engine


class HandlerGroup:
    """A list of handlers that attaches as one, in order.

    ``bundles/common/base.json`` lists the handlers every trainer and evaluator has and puts a
    ``HandlerGroup`` of the bundle's ``task_handlers`` at the point where those run, so the handler list
    stays a plain list (as MONAI's bundle property checks expect) and its order stays fixed.

    Args:
        handlers: objects with an ``attach(engine)`` method; disabled config components are already gone.
    """

    def __init__(self, handlers: Sequence[Any] = ()) -> None:
        missing = [type(h).__name__ for h in handlers if not callable(getattr(h, "attach", None))]
        if missing:
            raise TypeError(f"HandlerGroup: {missing} have no attach(engine) method")
        self.handlers = list(handlers)

    def attach(self, engine: Engine) -> None:
        """Attach every handler to ``engine``, in list order."""
        for handler in self.handlers:
            handler.attach(engine)
