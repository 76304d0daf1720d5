// node-postgres workload for tests/integration/drivers_test.cc:
//   node node_workload.js HOST PORT DATABASE USER PASSWORD CA_FILE
// TLS with verification of the certificate and of the host name (libpq's verify-full). Needs
// `npm ci` in this directory (pg, pg-cursor, pg-copy-streams). Prints one "OK ..." line per
// step; any failure prints its stack and exits 1.
'use strict';

const fs = require('fs');
const { pipeline } = require('stream/promises');
const { Readable, Writable } = require('stream');
const { Client } = require('pg');
const Cursor = require('pg-cursor');
const { from: copyFrom, to: copyTo } = require('pg-copy-streams');

function check(ok, what) {
  if (!ok) {
    throw new Error('check failed: ' + what);
  }
}

async function main([host, port, database, user, password, caFile]) {
  const client = new Client({
    host,
    port: Number(port),
    database,
    user,
    password,
    ssl: { ca: fs.readFileSync(caFile), rejectUnauthorized: true },
    connectionTimeoutMillis: 20000,
  });
  await client.connect();
  console.log('OK connect ' + (await client.query('SHOW server_version')).rows[0].server_version);
  await client.query('DROP TABLE IF EXISTS drv_node');
  await client.query('CREATE TABLE drv_node (id int PRIMARY KEY, name text, qty int)');

  // Named statements: node-postgres sends Parse once per connection and afterwards only
  // Bind/Execute with the name, whichever server the transaction lands on.
  for (let i = 0; i < 200; ++i) {
    const r = await client.query({
      name: 'drv-mul',
      text: 'SELECT $1::int * 5 AS v, $2::text AS tag',
      values: [i, 'n' + i],
    });
    check(r.rows[0].v === i * 5 && r.rows[0].tag === 'n' + i, JSON.stringify(r.rows));
  }
  await client.query('BEGIN');
  for (let i = 1; i <= 100; ++i) {
    await client.query({
      name: 'drv-ins',
      text: 'INSERT INTO drv_node VALUES ($1, $2, $3)',
      values: [i, 'item ' + i, i % 10],
    });
  }
  await client.query('COMMIT');
  const named = await client.query({
    name: 'drv-mul',
    text: 'SELECT $1::int * 5 AS v, $2::text AS tag',
    values: [9, 'x'],
  });
  check(named.rows[0].v === 45, 'named statement after the transaction');
  const count = await client.query('SELECT count(*)::int AS n FROM drv_node');
  check(count.rows[0].n === 100, 'rows ' + count.rows[0].n);
  console.log('OK named statements 201 selects and 100 inserts');

  // pg-cursor: an unnamed portal read with Execute(max rows) + Flush, Sync only at the end.
  const cursor = client.query(
    new Cursor('SELECT g, repeat($1, 10) AS pad FROM generate_series(1, 1000) g', ['x']));
  let seen = 0;
  let batches = 0;
  for (;;) {
    const rows = await cursor.read(150);
    if (rows.length === 0) {
      break;
    }
    ++batches;
    for (const row of rows) {
      ++seen;
      check(row.g === seen, 'cursor row ' + row.g + ' expected ' + seen);
    }
  }
  await cursor.close();
  check(seen === 1000 && batches === 7, 'cursor read ' + seen + ' rows in ' + batches);
  console.log('OK cursor 1000 rows in 7 batches');

  // COPY FROM STDIN and COPY TO STDOUT through pg-copy-streams.
  const lines = [];
  for (let i = 1001; i <= 3000; ++i) {
    lines.push(`${i}\tcopied ${i}\t${i % 3}\n`);
  }
  const ingest = client.query(copyFrom('COPY drv_node (id, name, qty) FROM STDIN'));
  await pipeline(Readable.from(lines), ingest);
  check(ingest.rowCount === 2000, 'copy in rowCount ' + ingest.rowCount);
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const dump = 'COPY (SELECT id, name, qty FROM drv_node WHERE id > 1000 ORDER BY id) TO STDOUT';
  await pipeline(client.query(copyTo(dump)), sink);
  check(out === lines.join(''), 'copy out differs: ' + out.length + ' bytes');
  console.log('OK copy 2000 rows in and out');

  const after = await client.query('SELECT count(*)::int AS n FROM drv_node');
  check(after.rows[0].n === 2100, 'rows ' + after.rows[0].n);
  await client.end();
  console.log('OK done');
}

if (process.argv.length !== 8) {
  console.error('usage: node node_workload.js HOST PORT DATABASE USER PASSWORD CA_FILE');
  process.exit(2);
}
main(process.argv.slice(2)).catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
