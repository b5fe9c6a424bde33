"""asyncio helpers shared by the engines and the server."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable


def put_from_thread(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> Callable[[Any], None]:
    """A callback for another thread (the scheduler's) that puts items onto `queue` on `loop`. Once the loop is
    closed -- the server stopped, nobody reads the answer any more -- items are dropped instead of raising
    `Event loop is closed` in the producing thread, which would end it with a traceback."""
    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass

    return put


async def merge_streams(streams: list[AsyncIterator[Any]]) -> AsyncIterator[tuple[int, Any]]:
    """(k, event) from every stream as events arrive. An error in one stream is raised here; when the consumer stops
    (the client went away), every stream is cancelled, so the engine drops their answers."""
    if len(streams) == 1:
        try:
            async for event in streams[0]:
                yield 0, event
        finally:
            close = getattr(streams[0], "aclose", None)
            if close is not None:
                await close()
        return
    items: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(k: int, stream: AsyncIterator[Any]) -> None:
        try:
            async for event in stream:
                items.put_nowait((k, event))
        except Exception as exc:  # handed to the consumer
            items.put_nowait((k, exc))
        finally:
            items.put_nowait((k, done))

    tasks = [asyncio.ensure_future(pump(k, s)) for k, s in enumerate(streams)]
    try:
        left = len(tasks)
        while left:
            k, item = await items.get()
            if item is done:
                left -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield k, item
    finally:
        for task in tasks:
            task.cancel()
