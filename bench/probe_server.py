"""Local targets for bench/probes.sh.

usage: probe_server.py PORT slow     HTTP 200 after 200 ms, to every request
       probe_server.py PORT silent   accepts connections and never answers
Prints "ready" once listening; stops by itself after 120 s (bounded).
"""
import asyncio
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


async def slow(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.2)
        writer.write(RESPONSE)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def silent(reader, writer):
    await asyncio.sleep(120)
    writer.close()


async def main(port, mode):
    server = await asyncio.start_server(
        slow if mode == "slow" else silent, "127.0.0.1", port, backlog=4096
    )
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(120)


if __name__ == "__main__":
    try:  # uvloop (libuv) keeps the server from being the bottleneck at N=1,000
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
