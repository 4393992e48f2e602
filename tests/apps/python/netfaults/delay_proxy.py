"""A TCP proxy that delays what it forwards, for the multi-host tests (this kernel has
no sch_netem). Usage: delay_proxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT
CONFIG_FILE. CONFIG_FILE holds "DELAY_MS JITTER_MS LOSS" and is read again every
100 ms: each chunk is held DELAY_MS plus a uniform 0..JITTER_MS, in order (a chunk is
never released before the one sent before it), and with probability LOSS it is held
another 200 ms, as TCP retransmits a lost segment. Prints "listening" once ready and
"config D J L" each time it takes a new configuration.
"""
import asyncio
import random
import sys
import time

listen_host, listen_port, target_host, target_port, config_file = sys.argv[1:6]
config = [0.0, 0.0, 0.0]


async def reload():
    while True:
        try:
            with open(config_file) as f:
                parts = f.read().split()
            new = [float(parts[0]), float(parts[1]), float(parts[2])]
            if new != config:
                config[:] = new
                print("config " + " ".join(parts[:3]), flush=True)
        except (OSError, ValueError, IndexError):
            pass
        await asyncio.sleep(0.1)


async def pipe(reader, writer):
    queue = asyncio.Queue()
    last = 0.0

    async def release():
        while True:
            at, data = await queue.get()
            if data is None:
                writer.close()
                return
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(release())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            delay_ms, jitter_ms, loss = config
            hold = delay_ms + random.uniform(0, jitter_ms)
            if random.random() < loss:
                hold += 200
            last = max(last, time.monotonic() + hold / 1000)
            queue.put_nowait((last, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def handle(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection(target_host, int(target_port))
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


async def main():
    asyncio.create_task(reload())
    server = await asyncio.start_server(handle, listen_host, int(listen_port))
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
