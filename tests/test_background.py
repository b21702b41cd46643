import asyncio

from cityops.background import Background, cancel_all


async def test_starts_once_and_stops_by_cancelling():
    runs = []
    gate = asyncio.Event()

    async def work():
        runs.append(1)
        await gate.wait()

    bg = Background("worker", work)
    bg.start()
    bg.start()
    await asyncio.sleep(0)
    assert bg.running and runs == [1]
    await bg.stop()
    assert not bg.running
    await bg.stop()  # stopping twice is harmless


async def test_cancel_all_stops_every_task_and_empties_the_list():
    started = asyncio.Event()

    async def forever():
        started.set()
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(forever()) for _ in range(3)]
    await started.wait()
    held = list(tasks)
    await cancel_all(tasks)
    assert tasks == [] and all(t.cancelled() for t in held)
