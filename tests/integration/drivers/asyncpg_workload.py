"""asyncpg workload for tests/integration/drivers_test.cc:

    /usr/bin/python3 asyncpg_workload.py HOST PORT DATABASE USER PASSWORD CA_FILE

TLS with verification of the certificate and of the host name (libpq's verify-full). Prints one
"OK ..." line per step; any failure prints its traceback and exits 1.
"""
import asyncio
import ssl
import sys

import asyncpg

CLIENTS = 50
QUERIES_PER_CLIENT = 20


def check(ok, what):
    if not ok:
        raise AssertionError("check failed: " + str(what))


async def main(host, port, database, user, password, ca_file):
    tls = ssl.create_default_context(cafile=ca_file)  # CERT_REQUIRED and check_hostname

    def connect():
        return asyncpg.connect(host=host, port=port, database=database, user=user,
                               password=password, ssl=tls, timeout=30)

    conn = await connect()
    print("OK connect", conn.get_server_version().major, flush=True)
    await conn.execute("DROP TABLE IF EXISTS drv_asyncpg")
    await conn.execute("CREATE TABLE drv_asyncpg (id int PRIMARY KEY, who int, v text)")

    # One prepared statement (a named statement on the server), executed many times; each
    # execution is its own transaction.
    stmt = await conn.prepare("SELECT $1::int * 2 AS doubled, $2::text AS tag")
    for i in range(200):
        row = await stmt.fetchrow(i, "t%d" % i)
        check(row["doubled"] == i * 2 and row["tag"] == "t%d" % i, row)
    check(await stmt.fetchval(21, "x") == 42, "fetchval")
    print("OK prepared 201 executions", flush=True)

    # executemany: one statement, many Bind/Execute pairs.
    await conn.executemany("INSERT INTO drv_asyncpg VALUES ($1, $2, $3)",
                           [(i, -1, "row %d" % i) for i in range(1, 501)])
    check(await conn.fetchval("SELECT count(*) FROM drv_asyncpg WHERE who = -1") == 500, "count")
    print("OK executemany 500 rows", flush=True)

    # A transaction and a failed one: the failed insert leaves nothing behind.
    async with conn.transaction():
        await conn.execute("UPDATE drv_asyncpg SET v = 'updated' WHERE id = 1")
    try:
        async with conn.transaction():
            await conn.execute("UPDATE drv_asyncpg SET v = 'lost' WHERE id = 2")
            await conn.execute("INSERT INTO drv_asyncpg VALUES (1, 0, 'duplicate')")
    except asyncpg.UniqueViolationError:
        pass
    rows = await conn.fetch("SELECT v FROM drv_asyncpg WHERE id IN (1, 2) ORDER BY id")
    check([r["v"] for r in rows] == ["updated", "row 2"], rows)
    print("OK transactions", flush=True)
    await conn.close()

    # Many clients at once, each with asyncpg's default statement cache: the same few queries
    # become named statements on whichever server runs them.
    async def client(n):
        c = await connect()
        try:
            for i in range(QUERIES_PER_CLIENT):
                kind = i % 4
                if kind == 0:
                    got = await c.fetchval("SELECT $1::int + $2::int", n, i)
                    check(got == n + i, (n, i, got))
                elif kind == 1:
                    await c.execute("INSERT INTO drv_asyncpg VALUES ($1, $2, $3)",
                                    1000 + n * 100 + i, n, "c%d" % n)
                elif kind == 2:
                    got = await c.fetchval("SELECT count(*) FROM drv_asyncpg WHERE who = $1", n)
                    check(got == (i + 2) // 4, (n, i, got))
                else:
                    async with c.transaction():
                        got = await c.fetchrow("SELECT $1::text || '-' || $2::text AS s, "
                                               "pg_backend_pid() AS pid", str(n), str(i))
                        check(got["s"] == "%d-%d" % (n, i), got)
            return n
        finally:
            await c.close()

    done = await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    check(sorted(done) == list(range(CLIENTS)), done)
    total = await (await connect()).fetchval("SELECT count(*) FROM drv_asyncpg WHERE who >= 0")
    check(total == CLIENTS * QUERIES_PER_CLIENT // 4, total)
    print("OK %d concurrent clients x %d queries" % (CLIENTS, QUERIES_PER_CLIENT), flush=True)
    print("OK done", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit("usage: asyncpg_workload.py HOST PORT DATABASE USER PASSWORD CA_FILE")
    host, port, database, user, password, ca_file = sys.argv[1:]
    asyncio.run(main(host, int(port), database, user, password, ca_file))
