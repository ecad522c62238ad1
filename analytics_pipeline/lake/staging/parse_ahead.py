"""Parsing big files in threads while keeping their order: Arrow releases the GIL."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.lake.parsing.arrow_parsing import FAST_PATH_MIN_BYTES, supports_fast_path

Parsed = TypeVar("Parsed")

# Big NDJSON files parsed at once (in threads: Arrow releases the GIL), each one in memory.
PARSE_WORKERS = 2
# Files read (and hashed) beyond those being parsed, so a worker finds the next one waiting
# instead of idling while the main thread reads it.
READ_AHEAD_FILES = 2


def parsed_ahead(
    spec: DatasetSpec,
    fetched_files: Iterator[tuple[str, tuple[bytes, str] | None]],
    parse: Callable[[str, bytes], Parsed],
) -> Iterator[tuple[str, tuple[bytes, str] | None, Parsed | None]]:
    """Files with their parse, in order; big NDJSON files parsed PARSE_WORKERS at a time,
    READ_AHEAD_FILES more read ahead (at most their sum held, each under the stream threshold).

    Arrow releases the GIL, so two big files parse on two cores; small files are parsed
    inline (a thread hand-off would cost more than their parse).
    """
    # pyarrow imports pandas at the first compute call given a Python scalar: import it here,
    # before the parse threads start, not in the middle of the first parse where both threads
    # would wait on the import lock (and not at start-up, where a run with nothing to parse
    # would pay for it).
    import pandas  # noqa: F401

    if not supports_fast_path(spec):
        for key, fetched in fetched_files:
            yield key, fetched, (parse(key, fetched[0]) if fetched is not None else None)
        return
    with ThreadPoolExecutor(max_workers=PARSE_WORKERS, thread_name_prefix="parse") as pool:

        def started(key: str, fetched: tuple[bytes, str] | None) -> tuple[Any, ...]:
            if fetched is None:
                return key, None, None
            if len(fetched[0]) >= FAST_PATH_MIN_BYTES:
                return key, fetched, pool.submit(parse, key, fetched[0])
            return key, fetched, parse(key, fetched[0])

        yield from results_in_order(
            (started(*f) for f in fetched_files), PARSE_WORKERS + READ_AHEAD_FILES
        )


def results_in_order(items: Iterable[tuple[Any, ...]], depth: int) -> Iterator[tuple[Any, ...]]:
    """The items in their order, each with its last element's Future (if it is one) replaced
    by its result; at most `depth` items are started ahead of the one yielded."""
    ahead: deque[tuple[Any, ...]] = deque()
    for item in items:
        ahead.append(item)
        if len(ahead) >= depth:
            yield _with_last_resolved(ahead.popleft())
    while ahead:
        yield _with_last_resolved(ahead.popleft())


def _with_last_resolved(item: tuple[Any, ...]) -> tuple[Any, ...]:
    *head, last = item
    return (*head, last.result() if isinstance(last, Future) else last)
