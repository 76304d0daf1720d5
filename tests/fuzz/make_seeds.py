#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<target>/.

Run from anywhere: python3 tests/fuzz/make_seeds.py. It (re)writes only the files named here;
regression inputs added next to them (reproducers of fixed crashes) are left alone. The binary
seeds are built here rather than by hand so that their length fields are right.
"""
import base64
import hashlib
import hmac
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent.parent
CORPUS = ROOT / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


# ---- frame: wire bytes (PostgreSQL docs 55.7) ----

def be32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def typed(t, body=b""):
    return t.encode() + be32(len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def startup(params, version=196608):
    body = b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return be32(len(body) + 8) + be32(version) + body


def frame_seeds():
    f = "frame"
    put(f, "startup_v3", startup([("user", "alice"), ("database", "shop"),
                                  ("application_name", "psql"), ("client_encoding", "UTF8")]))
    put(f, "startup_v3_2_options", startup([("user", "bob"), ("options", "-c search_path=app"),
                                            ("_pq_.protocol_extension", "on")], (3 << 16) | 2))
    put(f, "startup_repeated_user", startup([("user", "a"), ("user", "b")]))
    put(f, "startup_no_user", startup([("database", "shop")]))
    put(f, "startup_unterminated", be32(20) + be32(196608) + b"user\0alice\0x")
    put(f, "ssl_request", be32(8) + be32(80877103))
    put(f, "gssenc_request", be32(8) + be32(80877104))
    put(f, "cancel_request", be32(16) + be32(80877102) + be32(4242) + be32(0x7F00FF01))
    put(f, "cancel_v3_2_long_key", be32(40) + be32(80877102) + be32(4242) + b"k" * 28)
    # Plaintext smuggled in the same segment as the SSLRequest (TESTING.md A2).
    put(f, "ssl_request_then_query", be32(8) + be32(80877103) + typed("Q", cstr("select 1")))
    put(f, "startup_length_7", be32(7) + be32(196608))
    put(f, "startup_length_max_int", be32(0x7FFFFFFF) + be32(196608))
    put(f, "startup_length_2_31", be32(0x80000000) + be32(196608))
    put(f, "startup_truncated", startup([("user", "alice")])[:13])
    put(f, "query", typed("Q", cstr("SELECT * FROM t WHERE a = 'x'")))
    put(f, "extended_pipeline",
        typed("P", cstr("s1") + cstr("SELECT $1::int") + struct.pack(">hI", 1, 23))
        + typed("B", cstr("") + cstr("s1") + struct.pack(">hh", 1, 0) + struct.pack(">h", 1)
                + be32(1) + b"7" + struct.pack(">h", 0))
        + typed("D", b"P" + cstr("")) + typed("E", cstr("") + be32(0)) + typed("S"))
    put(f, "terminate", typed("X"))
    put(f, "flush_then_sync", typed("H") + typed("S"))
    put(f, "length_below_4", b"Q" + be32(3))
    put(f, "length_negative", b"D" + be32(0xFFFFFFF0))
    put(f, "length_over_small_limit", b"Q" + be32(5000) + b"select")
    put(f, "partial_message", typed("Q", cstr("select 1"))[:9])
    put(f, "error_response",
        typed("E", b"S" + cstr("FATAL") + b"V" + cstr("FATAL") + b"C" + cstr("28P01")
              + b"M" + cstr("password authentication failed for user \"x\"") + b"\0"))
    put(f, "error_without_sqlstate", typed("E", b"S" + cstr("ERROR") + b"M" + cstr("oops") + b"\0"))
    put(f, "notice_unterminated", typed("N", b"S" + cstr("NOTICE") + b"M" + b"no end"))
    put(f, "auth_ok", typed("R", be32(0)))
    put(f, "auth_md5", typed("R", be32(5) + b"\x01\x02\x03\x04"))
    put(f, "auth_sasl", typed("R", be32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256")
                               + b"\0"))
    put(f, "auth_sasl_continue", typed("R", be32(11) + b"r=abc,s=QSXCR+Q6sek8bf92,i=4096"))
    put(f, "sasl_initial", typed("p", cstr("SCRAM-SHA-256") + be32(32)
                                 + b"n,,n=,r=rOprNGfwEbeRWgbNEkqO" + b"...."))
    put(f, "sasl_initial_no_data", typed("p", cstr("SCRAM-SHA-256") + be32(0xFFFFFFFF)))
    put(f, "sasl_initial_huge_len", typed("p", cstr("SCRAM-SHA-256") + be32(0x7FFFFFFF)))
    put(f, "parameter_status", typed("S", cstr("TimeZone") + cstr("UTC")))
    put(f, "data_row_null", typed("D", struct.pack(">h", 2) + be32(1) + b"x" + be32(0xFFFFFFFF)))
    put(f, "copy_data_then_done", typed("d", b"1\tone\n") + typed("c") + typed("Z", b"I"))
    # Fields for the ErrorResponse encoder round trip: severity|sqlstate|message|detail|hint.
    put(f, "error_fields", "FATAL|08P01|invalid startup packet layout|expected terminator|retry")
    put(f, "error_fields_nul", b"ERROR|57014|cancel\0led|d|h")


# ---- sql: statement text; a NUL separates two statements sharing one Analyzer ----

def sql_seeds():
    s = "sql"
    own = {
        "hint_reader": "/* pglane: route=reader */ SELECT * FROM t",
        "hint_writer_nested_comment": "/* outer /* pglane: route=writer */ still */ SELECT 1",
        "set_route": "SET pglane.route = 'analytics'",
        "set_route_then_delete": "SET pglane.route = reader; DELETE FROM t",
        "cte_writes": "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "select_for_update": "SELECT * FROM jobs WHERE id = $1 FOR UPDATE SKIP LOCKED",
        "begin_read_only": "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        "serializable": "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "explain_analyze_write": "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = a + 1",
        "copy_from": "COPY t (a, b) FROM STDIN WITH (FORMAT csv)",
        "nextval": "SELECT nextval('order_seq'), currval('order_seq')",
        "numbers": "SELECT 1.5e-3, .5, 1_000, 0.1::numeric(10, 2), x[1:2] FROM t",
        "operators": "SELECT a <-> b, c @> d, e->>'f', g #- '{h}', -1-2 FROM t",
        "param_cast": "SELECT $1::text || $2::varchar(10)",
        "multi": "SELECT 1; SELECT 2;; INSERT INTO t VALUES (3)",
        "bit_strings": "SELECT B'1010', X'ff', N'nat'",
        "escapes": "SELECT E'\\x41\\n\\'', 'it''s', U&'\\0041' UESCAPE '\\'",
        "qident": 'SELECT "a""b", "", "Select" FROM "s"."t"',
        "unterminated_comment": "SELECT /* /* nested */ 1",
        "dollar_tag": "SELECT $fn$ body $x$ not end $fn$, $1",
        "stray_dollar": "SELECT $ 1",
        "backslash": "SELECT 1 \\gset",
        "merge": "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
        "call_do": "CALL p(1); DO $$BEGIN END$$",
        "empty": "  -- only a comment\n ; ;",
    }
    for name, text in own.items():
        put(s, name, text)
    pairs = {
        "pair_literals": ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = 2"),
        "pair_explain": ("EXPLAIN (ANALYZE 0) DELETE FROM t", "EXPLAIN (ANALYZE 1) DELETE FROM t"),
        "pair_set": ("SET pglane.route = 'reader'", "SET pglane.route = 'writer'"),
        "pair_strings": ("SELECT 'a' FROM t", "SELECT 'b' 'c' FROM t"),
        "pair_hint": ("/* pglane: route=writer */ SELECT f(1)", "SELECT f(2)"),
    }
    for name, (a, b) in pairs.items():
        put(s, name, a.encode() + b"\0" + b.encode())
    # A sample of the classification corpus: every line with quoting, dollar quotes or comments,
    # and every tenth line of the rest.
    lines = (REPO / "tests/data/classify_corpus.tsv").read_text().splitlines()
    n = 0
    for i, line in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        sql = fields[1].replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
        tricky = any(m in sql for m in ('"', "$$", "--", "/*", "E'", "U&", "''"))
        if tricky or i % 10 == 0:
            n += 1
            put(s, f"classify_{i + 1:03d}", sql)


# ---- session_effects: statement text ----

def session_effects_seeds():
    s = "session_effects"
    seeds = {
        "set_custom": "SET app.tenant = 'acme'",
        "set_session_quoted": 'SET SESSION "My.Setting" TO DEFAULT',
        "set_local": "SET LOCAL statement_timeout = '1s'",
        "set_from_current": "SET app.x FROM CURRENT",
        "reset_custom": "RESET app.tenant",
        "reset_all": "RESET ALL",
        "set_transaction": "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "set_characteristics": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "set_role": "SET ROLE reporting",
        "set_session_authorization": "SET SESSION AUTHORIZATION alice",
        "set_config": "SELECT set_config('app.user_id', '42', false)",
        "set_config_local": "SELECT set_config('app.user_id', '42', true)",
        "set_config_param": "SELECT set_config($1, $2, false)",
        "do_body": "DO $$BEGIN PERFORM set_config('app.a', '1', false); SET app.b = 2; END$$",
        "do_nested": "DO 'BEGIN EXECUTE ''DO $x$BEGIN LISTEN ch; END$x$''; END'",
        "call": "CALL refresh_all()",
        "discard_all": "DISCARD ALL",
        "discard_temp": "DISCARD TEMP",
        "deallocate": "DEALLOCATE stmt_1",
        "deallocate_quoted": 'DEALLOCATE PREPARE "Stmt"',
        "deallocate_all": "DEALLOCATE PREPARE ALL",
        "listen": "LISTEN jobs",
        "load": "LOAD 'auto_explain'",
        "prepare": "PREPARE q(int) AS SELECT $1",
        "prepare_transaction": "PREPARE TRANSACTION 'tx1'",
        "declare_with_hold": "DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t",
        "declare_without_hold": "DECLARE c CURSOR FOR SELECT 1",
        "create_temp_table": "CREATE TEMP TABLE scratch (a int) ON COMMIT PRESERVE ROWS",
        "create_global_temporary": "CREATE GLOBAL TEMPORARY TABLE g (a int)",
        "create_table": "CREATE TABLE t (a int)",
        "create_temp_view": "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
        "create_temp_sequence": "CREATE TEMPORARY SEQUENCE s",
        "create_temp_as": "CREATE TEMP TABLE x AS SELECT * FROM t",
        "select_into_temp": "WITH w AS (SELECT 1 AS a) SELECT * INTO TEMP x FROM w",
        "advisory_lock": "SELECT pg_advisory_lock(42)",
        "advisory_xact_lock": "SELECT pg_advisory_xact_lock(42)",
        "transaction_block": "BEGIN; SET app.a = 1; SET LOCAL app.b = 2; COMMIT",
        "alter_role_set": "ALTER ROLE alice SET search_path = app",
        "strings_hide_set": "SELECT 'SET app.x = 1', $$LISTEN x$$ -- SET y.z = 1",
        "unterminated": "SET app.x = 1; SELECT 'oops",
    }
    for name, text in seeds.items():
        put(s, name, text)


# ---- scram: RFC 7677 section 3 exchange, and a -PLUS exchange computed here ----

# RFC 7677's user: password "pencil", this salt, 4096 iterations.
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
SALTED = hashlib.pbkdf2_hmac("sha256", b"pencil", SALT, 4096)
CLIENT_KEY = hmac.new(SALTED, b"Client Key", "sha256").digest()
STORED_KEY = hashlib.sha256(CLIENT_KEY).digest()
SERVER_KEY = hmac.new(SALTED, b"Server Key", "sha256").digest()
VERIFIER = ("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + base64.b64encode(STORED_KEY).decode()
            + ":" + base64.b64encode(SERVER_KEY).decode())


def scram_seeds():
    s = "scram"
    cnonce = "rOprNGfwEbeRWgbNEkqO"
    snonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    client_key, stored_key, server_key = CLIENT_KEY, STORED_KEY, SERVER_KEY

    def exchange(gs2, cbind, user="user"):
        first_bare = f"n={user},r={cnonce}"
        server_first = f"r={cnonce}{snonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        c = base64.b64encode(gs2.encode() + cbind).decode()
        without_proof = f"c={c},r={cnonce}{snonce}"
        auth = f"{first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored_key, auth, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        v = base64.b64encode(hmac.new(server_key, auth, "sha256").digest()).decode()
        return gs2 + first_bare, server_first, final, "v=" + v

    first, server_first, final, server_final = exchange("n,,", b"")
    # These are RFC 7677's messages exactly.
    assert final.endswith("p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert server_final == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    put(s, "server_rfc7677", f"SSCRAM-SHA-256\n{first}\n{final}")
    put(s, "server_wrong_proof", f"SSCRAM-SHA-256\n{first}\n{final[:-8]}AAAAAAA=")
    put(s, "server_authzid", f"SSCRAM-SHA-256\nn,a=admin,n=user,r={cnonce}\n")
    put(s, "server_y_flag", f"SSCRAM-SHA-256\ny,,n=,r={cnonce}\n")
    put(s, "server_extension", f"SSCRAM-SHA-256\nn,,n=user,r={cnonce},x=ext\nc=biws")
    first_y, _, final_y, _ = exchange("y,,", b"")
    put(s, "server_y_flag_full", f"SSCRAM-SHA-256\n{first_y}\n{final_y}")
    cb = b"fuzz tls-server-end-point hash"
    first_p, _, final_p, _ = exchange("p=tls-server-end-point,,", cb, user="")
    put(s, "server_plus", f"PSCRAM-SHA-256-PLUS\n{first_p}\n{final_p}")
    put(s, "server_plus_downgrade", f"PSCRAM-SHA-256\n{first_y}\n{final_y}")
    put(s, "client_rfc7677", f"C{server_first}\n{server_final}")
    put(s, "client_bad_signature", f"C{server_first}\nv=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4")
    put(s, "client_error", f"C{server_first}\ne=invalid-proof")
    put(s, "client_absurd_iterations", f"Cr={cnonce}x,s=QSXCR+Q6sek8bf92,i=2147483647\nv=")
    put(s, "client_other_salt", f"Cr={cnonce}x,s=QSXCR+Q6sek8bf92,i=4096,ext=1\nv=AAAA")
    put(s, "verifier", "V" + VERIFIER)
    put(s, "base64_padding", "VQUJD+/w==")
    put(s, "saslprep_soft_hyphen", "VI\u00adX".encode())          # RFC 4013: maps to "IX"
    put(s, "saslprep_roman_nine", "V\u2168".encode())             # NFKC: "IX"
    put(s, "saslprep_prohibited", "V\u0007\u00e9".encode())
    put(s, "saslprep_invalid_utf8", b"V\xc3\x28pass")


# ---- config: proxy.toml, loaded as <scratch>/proxy.toml (see config_fuzz.cc) ----

def config_seeds():
    s = "config"
    full = (REPO / "conf/proxy.toml").read_text().replace("../sandbox/", "")
    put(s, "proxy_toml", full)
    put(s, "minimal", '[proxy]\nusers_file = "users.txt"\n\n[[regions]]\nname = "r"\n'
                      'writer = "db:5432"\n')
    put(s, "everything", """\
[proxy]
listen_addr = "::"
listen_port = 6432
workers = 4
region = "b"
max_message_size = 1024
users_file = "./users.txt"
log_level = "debug"

[tls]
mode = "prefer"
cert_file = "tls/server.crt"
key_file = "tls/server.key"
ca_file = "tls/ca.crt"
verify_client = true
min_version = "1.3"

[backend]
user = "svc"
password_file = "backend_password"
connect_timeout_ms = 100

[backend.tls]
mode = "verify-ca"
ca_file = "tls/ca.crt"

[backend.users.reporting]
user = "reporting_ro"
password = "x"

[pool]
mode = "session"
size = 1
queue_timeout_ms = 0

[[regions]]
name = "a"
writer = "[::1]:5432"
readers = ["10.0.0.2:5433", "replica.example:65535"]

[[regions]]
name = "b"
writer = "127.0.0.1:1"

[analytics]
endpoint = "warehouse:5439"
user = "analytics"
password = "p"
database = "dw"

[routing]
enabled = false
read_your_writes = "window"
read_only_functions = ["random", "pg_catalog.now"]
analysis_cache_size = 0

[health]
interval_ms = 100
user = "probe"
cert_file = "tls/health.crt"
key_file = "tls/health.key"
database = "postgres"
""")
    put(s, "errors", """\
[proxy]
users_file = "a_directory/"
listen_port = 70000
region = "nowhere"
unknown = 1
[tls]
mode = "require"
[backend]
password = "x"
password_file = "empty_password"
[[regions]]
name = ""
writer = "::1:5432"
readers = [1, "host"]
[[regions]]
writer = "[::1]"
""")
    put(s, "syntax_error", '[proxy\nusers_file = "users.txt"\n')
    put(s, "inline_tables", 'proxy = { users_file = "users.txt", workers = 2 }\n'
                            'regions = [ { name = "x", writer = "h:1" } ]\n'
                            'backend = { tls = { mode = "disable" } }\n')
    put(s, "types", '[proxy]\nusers_file = 1\nworkers = 1.5\nlisten_addr = 1979-05-27T07:32:00Z\n'
                    'region = true\n[[regions]]\nname = "\\u00e9t\\u00e9"\nwriter = \'h:1\'\n'
                    'readers = """\nmulti"""\n')


# ---- users: the users file ----

def users_seeds():
    s = "users"
    put(s, "valid", "# pglane users\n"
                    f"alice scram-sha-256 {VERIFIER}\n"
                    "bob\tmd5\tmd5A1B2C3D4E5F60718293A4B5C6D7E8F90  # md5 of password+user\n"
                    "carol trust\n\n   \n")
    put(s, "duplicate", "alice trust\nalice trust\n")
    put(s, "bad_scram", "alice scram-sha-256 SCRAM-SHA-256$0:c2FsdA==$a2V5:a2V5\n")
    put(s, "bad_md5", "bob md5 md5xyz\n")
    put(s, "trust_with_secret", "carol trust secret\n")
    put(s, "unknown_method", "dave password x\n")
    put(s, "crlf", "alice trust\r\nbob trust\r\n")


# ---- txn: operations on Conversations against a model server (see txn_fuzz.cc) ----

# Operation codes (the high bit of an operation byte picks the second client).
Q, P, B, D, C, E, S, H, F, WORK, DELIVER, DRAIN, NOTICE, LOSE, DETACH, KNOWN, RECONNECT = range(17)
# Indexes into txn_fuzz.cc kTexts.
T_SELECT, T_SELECT2, T_INSERT, T_SYNTAX, T_DIVZERO, T_BEGIN, T_COMMIT, T_ROLLBACK, T_DISCARD, \
    T_DEALLOC_A, T_DEALLOC_B, T_DEALLOC_ALL, T_LISTEN, T_SET_ROUTE, T_EMPTY, T_MULTI, \
    T_TEMP, T_SET = range(18)
# Names: 0 "", 1 "a", 2 "b", 3 "c"; + 4: int4 parameter (Parse), portal "p" (Bind).
ROUTING, RETRY, TWO_CLIENTS, TWO_SERVERS = 1, 8, 16, 32


def max_prepared(n):
    return (n - 1) << 1


def second(op):
    return op | 0x80


def txn_seeds():
    t = "txn"

    def put_ops(name, cfg, *ops):
        put(t, name, bytes([cfg]) + bytes(ops))

    run_named = (P, 1, T_SELECT, B, 1, D, 4, E, 0, S)
    put_ops("simple_query", 0, Q, T_SELECT, DRAIN)
    put_ops("extended_named", 0, *run_named, DRAIN)
    put_ops("parse_error_in_batch", 0, P, 1, T_SYNTAX, B, 1, E, 0, S, P, 2, T_SELECT, S, DRAIN,
            B, 1, S, DRAIN)
    put_ops("pipelined_batches", 0, P, 1, T_SELECT, S, P, 2, T_SELECT, B, 2, E, 0, S, WORK, 1,
            DELIVER, 1, WORK, 3, DELIVER, 3, DRAIN)
    put_ops("eviction", max_prepared(1), P, 1, T_SELECT, P, 2, T_SELECT2, S, DRAIN, B, 1, E, 0, S,
            DRAIN)
    put_ops("close_local", 0, P, 1, T_SELECT, C, 1, S, DRAIN, B, 1, S, DRAIN)
    put_ops("two_clients_deallocate", TWO_CLIENTS, P, 1, T_SELECT, S, DRAIN,
            second(P), 2, T_SELECT, second(S), second(DRAIN), second(Q), T_DEALLOC_B,
            second(DRAIN), Q, T_DEALLOC_A, DRAIN)
    put_ops("retry_read", RETRY, Q, T_SELECT, WORK, 0, DELIVER, 0, LOSE, 0, DRAIN)
    put_ops("known_prepare", TWO_CLIENTS, P, 1, T_SELECT, S, DRAIN,
            second(KNOWN), 0, 0, T_SELECT, 0, second(B), 1, second(E), 0, second(S),
            second(DRAIN))
    put_ops("route_setting", ROUTING, Q, T_SET_ROUTE, Q, T_SELECT, Q, T_SET_ROUTE, DRAIN)
    put_ops("transaction_then_discard", 0, P, 1, T_SELECT, S, DRAIN, Q, T_BEGIN, B, 1, E, 0, S,
            Q, T_DIVZERO, Q, T_COMMIT, DRAIN, Q, T_DISCARD, DRAIN, P, 2, T_SELECT, S, DRAIN)
    put_ops("loss_mid_pipeline", 0, P, 0, T_INSERT, B, 0, E, 0, S, Q, T_SELECT, WORK, 1,
            DELIVER, 1, LOSE, 1, Q, T_SELECT, DRAIN)
    put_ops("pins_and_discard", 0, Q, T_LISTEN, DRAIN, Q, T_TEMP, Q, T_DISCARD, DRAIN, DETACH,
            RECONNECT, Q, T_SELECT, DRAIN)
    put_ops("two_servers_lazy_parse", TWO_CLIENTS | TWO_SERVERS, P, 1, 0, T_SELECT, S, DRAIN,
            second(Q), 0, T_BEGIN, second(WORK), 1, B, 1, 1, E, 0, S, DRAIN, NOTICE, DRAIN)
    put_ops("function_call_and_flush", 0, F, H, P, 0, T_EMPTY, B, 0, D, 4, E, 0, S, DRAIN)


frame_seeds()
sql_seeds()
session_effects_seeds()
scram_seeds()
config_seeds()
users_seeds()
txn_seeds()
for d in sorted(CORPUS.iterdir()):
    print(f"{d.name}: {sum(1 for _ in d.iterdir())} files")
