"""What every policy's options type shares.

A policy's options are one frozen dataclass: validated when built (``ConfigError``s
name the parameter and quote the value), compared by value, copied with
``replace(**changes)`` (validated again). Its field defaults are the policy's one set
of defaults: the policy's constructor reads its defaults from there, and so does the
Outage Lab's scenario parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .errors import ConfigError
from .events import check_listeners
from .validate import check_clock, check_name, check_random

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Configured", "Options"]

Opts = TypeVar("Opts", bound="Options")

_SHARED: dict[str, Callable[[Any], Any]] = {
    "clock": check_clock,
    "random": check_random,
    "listeners": check_listeners,
}


class Options:
    """Base of the options types. Subclasses are ``@dataclass(frozen=True)`` and
    implement ``_check()``, which validates every field and stores normalized values
    with ``_set`` (a tuple for a list of listeners, a float for an int, ...)."""

    __slots__ = ()

    def __post_init__(self) -> None:
        self._check()
        self._check_shared()

    def _check_shared(self) -> None:
        """The options most policies have, checked alike: ``name`` (its default stands
        for None), ``clock``, ``random`` and ``listeners``."""
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value: Any = getattr(self, field.name)
            if field.name == "name":
                if isinstance(field.default, str):  # None means the default name
                    self._set("name", check_name("name", value, field.default))
                elif value is not None:  # a name of one's own, or (Chaos) None: derived
                    check_name("name", value, "")
            elif field.name in _SHARED:
                self._set(field.name, _SHARED[field.name](value))

    def _check(self) -> None:
        raise NotImplementedError

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def replace(self: Opts, **changes: Any) -> Opts:
        """A copy with ``changes`` (validated like the original)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option that has a default, and that default."""
        return {
            field.name: field.default
            for field in dataclasses.fields(cls)  # type: ignore[arg-type]
            if field.default is not dataclasses.MISSING
        }


OptionsT = TypeVar("OptionsT", bound=Options)


class Configured(Generic[OptionsT]):
    """What a policy (or budget) built from an options type offers: ``options``,
    ``from_options(options)`` and ``replace(**changes)``. It implements ``_configure``,
    which keeps the options (``self._options``) and precomputes what its hot path reads
    from them, and starts its state afresh."""

    __slots__ = ()

    options_type: ClassVar[type[Options]]
    _options: OptionsT

    @property
    def options(self) -> OptionsT:
        """The options this was built with."""
        return self._options

    @classmethod
    def from_options(cls, options: OptionsT) -> Self:
        """A new one with these options (and a state of its own)."""
        if not isinstance(options, cls.options_type):
            raise ConfigError("options", f"a {cls.options_type.__name__}", options)
        made = cls.__new__(cls)
        made._configure(options)
        return made

    def replace(self, **changes: Any) -> Self:
        """A new one with these options but ``changes`` (and a state of its own)."""
        return self.from_options(self._options.replace(**changes))

    def _configure(self, options: OptionsT) -> None:
        raise NotImplementedError
