"""Overlapped calls with results in the order asked: many small S3 objects are dominated by
round trips, not bytes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead_in_order(
    call: Callable[[T], R], items: list[T], workers: int, ahead: int, thread_name: str
) -> Iterator[tuple[T, R]]:
    """(item, call(item)) in the order of `items`, up to `workers` calls at once.

    At most `ahead` results wait for the consumer, so memory stays bounded however long the
    list is; calls not started when the consumer stops are cancelled.
    """
    if not items:
        return
    remaining = iter(items)
    pending: deque[tuple[T, Future[R]]] = deque()
    with ThreadPoolExecutor(
        max_workers=min(workers, len(items)), thread_name_prefix=thread_name
    ) as pool:

        def submit_next() -> None:
            for item in remaining:
                pending.append((item, pool.submit(call, item)))
                return

        for _ in range(ahead):
            submit_next()
        try:
            while pending:
                item, future = pending.popleft()
                result = future.result()
                submit_next()
                yield item, result
        finally:
            for _, future in pending:
                future.cancel()
