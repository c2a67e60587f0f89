"""The base class every policy derives from, for policies of your own: implement
``_run(fn, args, kwargs)`` and ``async _arun(fn, args, kwargs)``; the decorator,
``call``, ``acall`` and ``Pipeline`` support come with it."""

from ._policy import Policy

__all__ = ["Policy"]
