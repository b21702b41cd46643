import asyncio

from cityops.background import Background


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
