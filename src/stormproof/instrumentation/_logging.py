"""Structured logs: one call logs every event, through the standard library or structlog.

``enable_logging()`` subscribes one listener for every policy and returns the function
that turns it off. Each event becomes one log line whose structured data uses the names
below, chosen once (docs/observability.md lists them):

- standard library: ``extra={"stormproof": {...}, "stormproof_kind": ...,
  "stormproof_policy": ...}``, so JSON formatters get the data and format strings or
  filters can use the flat attributes;
- structlog: ``event=<kind>`` and the data as keys.

The data: ``kind``, ``policy``, ``clock_time`` (the event's ``time``: the policy's
clock, not the wall clock), then the event's own fields. An exception is never logged
by value: ``error`` becomes ``error_type`` (its class's qualified name) and
``error_class`` (stormproof's classification), and its message only with
``error_messages=True`` (cut to 500 characters), since messages may hold URLs,
credentials or user data and have no bound.

structlog is imported only when asked for; nothing is imported or subscribed before
the call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any

from stormproof._classify import classify
from stormproof._core.errors import ConfigError
from stormproof._core.events import Event, subscribe, unsubscribe
from stormproof._core.validate import check_bool

__all__ = [
    "LOGGER_NAME",
    "MESSAGE_LIMIT",
    "enable_logging",
    "error_message",
    "error_type",
    "structured",
]

LOGGER_NAME = "stormproof.events"
"""The standard library logger used when none is given (a child of ``stormproof``)."""

MESSAGE_LIMIT = 500
"""The most characters of an exception's message logged (``error_messages=True``)."""

_STRUCTLOG_METHODS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


def enable_logging(
    logger: logging.Logger | str | None = None,
    level: int | str = logging.INFO,
    *,
    structlog: Any = None,
    error_messages: bool = False,
) -> Callable[[], None]:
    """Log every event of every policy, one line each; returns the function that stops.

    ``logger``: a ``logging.Logger`` or a logger name (default ``"stormproof.events"``).
    ``level``: the level of every line, a number (``logging.INFO``) or a name
    (``"INFO"``). ``structlog``: ``None`` or ``False`` (the default) logs through the
    standard library; ``True`` through ``structlog.get_logger(<logger name>)``; or
    pass a structlog logger of your own (``structlog.get_logger().bind(...)``), to
    which every event goes (``logger`` is then not given). ``error_messages``: also
    log each exception's message (off by default: messages may hold secrets).

    Each call subscribes a listener of its own: call it once, at start-up.
    """
    check_bool("error_messages", error_messages)
    number = _check_level(level)
    if structlog is None or structlog is False:
        listener: Callable[[Event], None] = _StdlibListener(
            _check_logger(logger), number, error_messages
        )
    else:
        listener = _StructlogListener(
            _structlog_logger(structlog, logger), _structlog_method(level, number), error_messages
        )
    subscribe(listener)

    def stop() -> None:
        """Stop logging events (calling it again does nothing)."""
        unsubscribe(listener)

    return stop


# -- the data of an event ----------------------------------------------------------------


def structured(event: Event, error_messages: bool = False) -> dict[str, object]:
    """An event as the data its log line carries: ``kind``, ``policy``, ``clock_time``
    and its fields, every value a string, number, bool or None; an exception replaced
    by ``error_type`` and ``error_class`` (and ``error_message`` if asked for)."""
    data: dict[str, object] = {
        "kind": event.kind,
        "policy": event.policy,
        "clock_time": event.time,
    }
    fields = event.fields()
    for name, value in fields.items():
        if name in ("policy", "time"):
            continue
        if name == "error":
            error = value if isinstance(value, BaseException) else None
            data["error_type"] = None if error is None else error_type(error)
            if "error_class" not in fields:
                data["error_class"] = None if error is None else classify(error)
            if error_messages:
                data["error_message"] = None if error is None else error_message(error)
        elif isinstance(value, BaseException):  # an exception under another name
            data[f"{name}_type"] = error_type(value)
        elif isinstance(value, Enum):
            data[name] = value.value
        elif value is None or isinstance(value, (str, int, float)):
            data[name] = value
        else:
            data[name] = str(value)
    return data


def error_type(error: BaseException) -> str:
    """The exception's class by its qualified name: ``ConnectionError`` for built-ins,
    ``botocore.exceptions.EndpointConnectionError``, ``stormproof.CircuitOpen``."""
    kind = type(error)
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    if module.startswith("stormproof.") and "._" in module:
        public = sys.modules.get("stormproof")
        if getattr(public, kind.__qualname__, None) is kind:
            return f"stormproof.{kind.__qualname__}"
    return f"{module}.{kind.__qualname__}"


def error_message(error: BaseException) -> str:
    """The exception's message, at most ``MESSAGE_LIMIT`` characters."""
    try:
        text = str(error)
    except Exception:
        return f"<{type(error).__name__}: message unavailable>"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


# -- the listeners ---------------------------------------------------------------------------


class _StdlibListener:
    """One record per event: ``retry.scheduled policy=db attempt=1 ...`` with the data in
    ``extra``."""

    __slots__ = ("_error_messages", "_level", "_logger")

    def __init__(self, logger: logging.Logger, level: int, error_messages: bool) -> None:
        self._logger = logger
        self._level = level
        self._error_messages = error_messages

    def __call__(self, event: Event) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        data = structured(event, self._error_messages)
        self._logger.log(
            self._level,
            "%s %s",
            event.kind,
            _text(data),
            extra={
                "stormproof": data,
                "stormproof_kind": event.kind,
                "stormproof_policy": event.policy,
            },
        )

    def __repr__(self) -> str:
        return (
            f"<stormproof log listener: {self._logger.name} at {logging.getLevelName(self._level)}>"
        )


class _StructlogListener:
    """One structlog call per event: ``event=<kind>`` and the data as keys."""

    __slots__ = ("_error_messages", "_logger", "_method")

    def __init__(self, logger: Any, method: str, error_messages: bool) -> None:
        self._logger = logger
        self._method = method
        self._error_messages = error_messages

    def __call__(self, event: Event) -> None:
        data = structured(event, self._error_messages)
        del data["kind"]  # it is the event
        getattr(self._logger, self._method)(event.kind, **data)

    def __repr__(self) -> str:
        return f"<stormproof structlog listener: {self._method}>"


def _text(data: dict[str, object]) -> str:
    """``policy=db attempt=1 delay=0.042 ...``: the data after the kind, but the clock."""
    parts = []
    for name, value in data.items():
        if name in ("kind", "clock_time"):
            continue
        if isinstance(value, float):
            shown = f"{value:.6g}"
        elif name == "error_message" and value is not None:
            shown = repr(value)  # one line, whatever the message holds
        else:
            shown = str(value)
        parts.append(f"{name}={shown}")
    return " ".join(parts)


# -- validation ----------------------------------------------------------------------------


def _check_level(level: object) -> int:
    requirement = "a logging level: a number such as logging.INFO, or a name such as 'INFO'"
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if isinstance(number, int):
            return number
        raise ConfigError("level", requirement, level)
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise ConfigError("level", requirement, level)
    return level


def _check_logger(logger: object) -> logging.Logger:
    if logger is None:
        return logging.getLogger(LOGGER_NAME)
    if isinstance(logger, str) and logger:
        return logging.getLogger(logger)
    if isinstance(logger, logging.Logger):
        return logger
    raise ConfigError("logger", "a logging.Logger, a logger name or None", logger)


def _structlog_method(level: object, number: int) -> str:
    method = _STRUCTLOG_METHODS.get(number)
    if method is None:
        raise ConfigError("level", "DEBUG, INFO, WARNING, ERROR or CRITICAL with structlog", level)
    return method


def _structlog_logger(option: object, logger: object) -> Any:
    """The structlog logger to send events to: structlog's own, by name (``True``), or
    the one given."""
    if option is True:
        try:
            import structlog  # noqa: PLC0415 - only when asked for
        except ImportError as error:
            raise ImportError(
                "enable_logging(structlog=True) needs structlog: pip install structlog"
            ) from error
        if isinstance(logger, logging.Logger):
            name = logger.name
        elif logger is None:
            name = LOGGER_NAME
        elif isinstance(logger, str) and logger:
            name = logger
        else:
            raise ConfigError("logger", "a logging.Logger, a logger name or None", logger)
        return structlog.get_logger(name)
    if isinstance(option, (logging.Logger, logging.LoggerAdapter)):
        raise ConfigError(
            "structlog", "True or a structlog logger (a logging.Logger goes in logger=)", option
        )
    if isinstance(option, (bool, str, int, float)) or not all(
        callable(getattr(option, method, None)) for method in _STRUCTLOG_METHODS.values()
    ):
        raise ConfigError(
            "structlog",
            "None, False, True, or a structlog logger (with debug, info, warning, error "
            "and critical methods)",
            option,
        )
    if logger is not None:
        raise ConfigError("logger", "None when structlog is a logger of its own", logger)
    return option
