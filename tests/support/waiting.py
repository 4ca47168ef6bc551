"""Waiting for conditions, never for fixed times."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["wait_until"]


async def wait_until(condition: Callable[[], bool], deadline: float = 15.0) -> None:
    """Yield to the event loop until ``condition()`` holds; fail after ``deadline`` s.

    The deadline is generous on purpose: it only turns a hang into a failure.
    """
    try:
        async with asyncio.timeout(deadline):
            while not condition():  # noqa: ASYNC110 - polling a plain predicate
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"condition not met within {deadline}s: {condition}") from None
