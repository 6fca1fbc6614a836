"""The peer for bench/probes.sh: GET every URL of a targets file at once
with Python asyncio + aiohttp (uvloop), as a hand-written readiness check
would, and say how many answered 2xx. usage: aiohttp_probes.py TARGETS"""
import asyncio
import sys

import aiohttp
import uvloop


async def main(path):
    urls = [u.strip() for u in open(path) if u.strip()]
    timeout = aiohttp.ClientTimeout(total=5)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as s:

        async def one(u):
            try:
                async with s.get(u) as r:
                    await r.read()
                    return 200 <= r.status < 300
            except Exception:
                return False

        ok = sum(await asyncio.gather(*(one(u) for u in urls)))
    print(f"aiohttp: {ok} of {len(urls)} passed")


uvloop.run(main(sys.argv[1]))
