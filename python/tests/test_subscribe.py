"""Subscriptions over the WebSocket, for every transport's store: policies 'all' and 'latest', frames, async."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import pixelport


@pytest.fixture
def writer(server):
    """The writer is an HTTP client: commits made in shared memory by another process reach the server's
    event stream through its relay thread, which may announce a burst of them as one event."""
    with pixelport.connect(server.url, transport='http') as w:
        yield w


def test_all_delivers_every_event_in_order_with_its_own_frame(store, writer, new_id):
    store.create(new_id, width=16, height=8, mode='L')
    with store.subscribe([new_id], policy='all', data=True, queue=256) as sub:
        for value in range(1, 41):
            writer.put(new_id, np.full((8, 16), value, np.uint8))
        writer.delete(new_id)
        seen = []
        while True:
            event = sub.next(timeout=20)
            assert event is not None, 'no event within 20 s after %d' % len(seen)
            if event.type == 'deleted':
                assert event.array is None
                break
            assert event.type == 'updated' and event.skipped == 0
            assert (event.array == event.array.flat[0]).all(), 'one generation per frame, never torn'
            seen.append((event.generation, int(event.array[0, 0])))
    first = seen[0][0]
    assert [g for g, _ in seen] == list(range(first, first + 40)), 'every generation, in order'
    assert [v for _, v in seen] == list(range(1, 41)), 'each frame is the pixels of its own generation'


def test_latest_conflates_a_slow_reader_and_ends_on_the_newest(store, new_id):
    # Large enough frames that the server's send buffer fills while we do not read: it must conflate.
    shape = (512, 1024)
    store.create(new_id, width=1024, height=512, mode='L')
    with store.subscribe([new_id], policy='latest', data=True) as sub:
        last = None
        for value in range(1, 61):
            last = store.put(new_id, np.full(shape, value, np.uint8))['generation']
        events = []
        while True:
            event = sub.next(timeout=10)
            assert event is not None, 'the newest generation must arrive'
            assert (event.array == event.array.flat[0]).all()
            events.append(event)
            if event.generation == last:
                break
    for before, after in zip(events, events[1:]):
        assert before.generation + 1 + after.skipped == after.generation, 'skipped counts what was conflated'
    assert int(events[-1].array[0, 0]) == 60
    assert len(events) < 60, 'a reader that did not keep up got fewer frames than commits (%d)' % len(events)
    store.delete(new_id)


def test_events_without_data_and_for_all_images(store, new_id):
    with store.subscribe(policy='all', data=False) as sub:
        store.create(new_id, width=2, height=2, mode='L')
        store.put(new_id, bytes(4))
        store.delete(new_id)
        mine = []
        while len(mine) < 3:
            event = sub.next(timeout=10)
            assert event is not None, 'three events about %s' % new_id
            if event.id == new_id:
                assert event.array is None
                mine.append(event.type)
    assert mine == ['created', 'updated', 'deleted']


def test_async_iteration(store, writer, new_id):
    store.create(new_id, width=3, height=1, mode='RGB')

    async def main():
        got = []
        async with store.subscribe([new_id], policy='all') as sub:
            # Writes happen in a thread so this loop keeps running.
            write = asyncio.get_running_loop().run_in_executor(
                None, lambda: [writer.put(new_id, np.full((1, 3, 3), v, np.uint8)) for v in (1, 2, 3)])
            async for event in sub:
                got.append(int(event.array[0, 0, 0]))
                if len(got) == 3:
                    break
            await write
        return got

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [1, 2, 3]
    store.delete(new_id)


def test_wait_for_change_on_every_transport(store, new_id):
    store.create(new_id, width=2, height=2, mode='L')
    with store.open(new_id) as img:
        g = img.generation
        with pytest.raises(pixelport.PixelportError) as caught:
            img.wait_for_change(g, timeout=0.2)
        assert caught.value.code == 'PXP_ERR_TIMEOUT'
        store.put(new_id, bytes([1, 2, 3, 4]))
        assert img.wait_for_change(g, timeout=10) == g + 1
        store.delete(new_id)
        with pytest.raises(pixelport.PixelportError) as caught:
            img.wait_for_change(img.generation if img.local else g + 1, timeout=10)
        assert caught.value.code == 'PXP_ERR_NOT_FOUND'


def test_a_bad_policy_is_refused(store):
    with pytest.raises(pixelport.PixelportError) as caught:
        store.subscribe(policy='some')
    assert caught.value.code == 'PXP_ERR_VALIDATION'
