"""The 50 ms target of bench/load.sh: HTTP/1.1 with keep-alive, every answer
"200 ok" after DELAY_MS (asyncio on uvloop, so a few hundred requests per
second in flight cost it little).

usage: load_server.py PORT DELAY_MS
Prints "ready" once listening; stops by itself after 300 s (bounded).
"""
import asyncio
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


def handler(delay):
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > 65536:
                    break
                if delay:
                    await asyncio.sleep(delay)
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return serve


async def main(port, delay):
    server = await asyncio.start_server(handler(delay), "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(300)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) / 1000))
