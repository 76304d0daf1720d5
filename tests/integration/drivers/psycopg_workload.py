"""psycopg 3 workload for tests/integration/drivers_test.cc:

    /usr/bin/python3 psycopg_workload.py CONNINFO

Prints one "OK ..." line per step; any failure prints its traceback and exits 1.
"""
import sys

import psycopg


def check(ok, what):
    if not ok:
        raise AssertionError("check failed: " + str(what))


def main(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        print("OK connect", conn.info.server_version, flush=True)
        conn.execute("DROP TABLE IF EXISTS drv_psycopg")
        conn.execute("CREATE TABLE drv_psycopg (id int PRIMARY KEY, name text, qty int)")

        # prepare=True: a named server-side statement from the first execution, reused by the
        # next ones, each in its own transaction.
        sql = "SELECT %s::int * 3, 'psy_marker'"
        for i in range(200):
            got = conn.execute(sql, (i,), prepare=True).fetchone()
            check(got == (i * 3, "psy_marker"), got)
        # Inside a transaction the statement exists on the server under psycopg's name. (The
        # pattern is built with || so that this query does not match itself.)
        with conn.transaction():
            check(conn.execute(sql, (7,), prepare=True).fetchone() == (21, "psy_marker"), 7)
            prepared = conn.execute(
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE statement LIKE '%%psy' || '_marker%%'"
            ).fetchone()[0]
            check(prepared >= 1, "pg_prepared_statements has the statement: %d" % prepared)
        print("OK prepared 201 executions, named on the server", flush=True)

        # executemany (psycopg 3.1 sends it as one pipeline) in psycopg's default mode: the
        # first statement opens a transaction, commit() ends it.
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO drv_psycopg VALUES (%s, %s, %s)",
                [(i, "item %d" % i, i % 7) for i in range(1, 301)],
            )
        conn.commit()
        n, total = conn.execute("SELECT count(*), sum(qty) FROM drv_psycopg").fetchone()
        check((n, total) == (300, sum(i % 7 for i in range(1, 301))), (n, total))
        conn.commit()
        conn.autocommit = True
        print("OK executemany 300 rows", flush=True)

        # A transaction block with a savepoint that rolls back, and one that fails whole.
        with conn.transaction():
            conn.execute("UPDATE drv_psycopg SET qty = 1000 WHERE id = 1")
            try:
                with conn.transaction():
                    conn.execute("UPDATE drv_psycopg SET qty = 2000 WHERE id = 2")
                    conn.execute("SELECT 1 / 0")
            except psycopg.errors.DivisionByZero:
                pass
            check(conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS,
                  "still in the outer transaction")
        try:
            with conn.transaction():
                conn.execute("UPDATE drv_psycopg SET qty = 3000 WHERE id = 3")
                raise RuntimeError("rollback please")
        except RuntimeError:
            pass
        rows = conn.execute("SELECT id, qty FROM drv_psycopg WHERE id <= 3 ORDER BY id").fetchall()
        check(rows == [(1, 1000), (2, 2), (3, 3)], rows)
        print("OK transaction blocks with savepoint", flush=True)

        # COPY FROM STDIN (rows) and COPY TO STDOUT (rows back, typed).
        with conn.cursor() as cur:
            with cur.copy("COPY drv_psycopg (id, name, qty) FROM STDIN") as copy:
                for i in range(1001, 2001):
                    copy.write_row((i, "copied\t%d" % i, i))
            check(cur.rowcount == 1000, cur.rowcount)
            seen = 0
            with cur.copy("COPY (SELECT id, name FROM drv_psycopg WHERE id > 1000 ORDER BY id)"
                          " TO STDOUT") as copy:
                copy.set_types(["int4", "text"])
                for row in copy.rows():
                    check(row == (1001 + seen, "copied\t%d" % (1001 + seen)), row)
                    seen += 1
            check(seen == 1000, seen)
        print("OK copy 1000 rows in and out", flush=True)

        # A named (server-side) cursor read in batches inside its transaction.
        with conn.transaction():
            with conn.cursor(name="drv_big") as cur:
                cur.itersize = 100
                cur.execute("SELECT id FROM drv_psycopg ORDER BY id")
                first = cur.fetchmany(50)
                check([r[0] for r in first] == list(range(1, 51)), first[:3])
                rest = [r[0] for r in cur]
                check(len(rest) == 1250 and rest[-1] == 2000, (len(rest), rest[-1:]))
                check(
                    conn.execute("SELECT count(*) FROM pg_cursors WHERE name = 'drv_big'")
                    .fetchone()[0] == 1,
                    "cursor open on the server",
                )
        print("OK named cursor 1300 rows in batches", flush=True)
    print("OK done", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: psycopg_workload.py CONNINFO")
    main(sys.argv[1])
