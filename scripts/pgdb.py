"""Create or drop a scratch PostgreSQL database: ``python scripts/pgdb.py create|drop URL NAME``."""

from __future__ import annotations

import asyncio
import re
import sys

import asyncpg


async def main(op: str, url: str, name: str) -> None:
    if not re.fullmatch(r"[a-z0-9_]{1,63}", name):
        raise SystemExit(f"bad database name {name!r}")
    conn = await asyncpg.connect(url)
    try:
        if op == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
