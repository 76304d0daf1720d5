// pglane's configuration: plain structs filled by the TOML loader (conf/loader.h). Every field
// maps to one key of conf/proxy.toml; the comment there is the user-facing documentation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pglane::conf {

enum class ClientTlsMode { kDisable, kAllow, kPrefer, kRequire };
enum class ServerTlsMode { kDisable, kPrefer, kRequire, kVerifyCa, kVerifyFull };
enum class PoolMode { kSession, kTransaction };
enum class AuthMethod { kScramSha256, kMd5, kTrust };
enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kLogfmt, kJson };

struct Endpoint {
  std::string host;  // name or address; also the TLS SNI / verify-full name
  uint16_t port = 5432;
  bool operator==(const Endpoint&) const = default;
  std::string to_string() const {
    // IPv6 literals are bracketed so the port stays unambiguous.
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

struct ProxySection {
  std::string listen_addr = "127.0.0.1";
  uint16_t listen_port = 6432;
  int workers = 0;     // 0 = number of cores
  std::string region;  // the gateway's own region (must name one of `regions`)
  int max_client_conn = 10000;
  uint64_t max_message_size = uint64_t{1} << 30;
  int auth_timeout_ms = 10000;
  int client_idle_timeout_ms = 0;  // 0 = off
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  // A unit of work (transaction) that held its server this long or longer is logged with its
  // route and timings. 0 = off.
  int slow_transaction_ms = 0;
  // SIGTERM, SIGINT and the console's SHUTDOWN WAIT: how long transactions under way may run
  // before their clients are closed anyway.
  int shutdown_timeout_ms = 30000;
  std::string users_file;  // absolute after loading (relative paths resolve to the config dir)
};

struct ClientTls {
  ClientTlsMode mode = ClientTlsMode::kDisable;
  std::string cert_file;
  std::string key_file;
  std::string ca_file;              // CA for client certificates (only with verify_client)
  bool verify_client = false;       // require and verify a client certificate
  std::string min_version = "1.2";  // "1.2" or "1.3"
};

struct ServerTls {
  ServerTlsMode mode = ServerTlsMode::kPrefer;
  std::string ca_file;
};

// Credentials pglane uses to log in to servers.
struct BackendCredential {
  std::string user;      // empty = the client's own user name
  std::string password;  // plaintext (SCRAM, md5 and cleartext all need it)
};

struct BackendSection {
  BackendCredential service;                          // default for every client user
  std::map<std::string, BackendCredential> per_user;  // client user -> credential
  ServerTls tls;
  int connect_timeout_ms = 5000;
  const BackendCredential& credential_for(const std::string& client_user) const {
    auto it = per_user.find(client_user);
    return it == per_user.end() ? service : it->second;
  }
};

struct PoolSection {
  PoolMode mode = PoolMode::kTransaction;
  int size = 20;                        // server connections per (database, user, server)
  int queue_timeout_ms = 5000;          // how long a client waits for a server connection
  int server_idle_timeout_ms = 600000;  // idle server connections older than this are closed
  // Transaction mode: named prepared statements one server connection keeps (LRU, evicted with
  // Close).
  int max_prepared_statements = 200;
  // Transaction mode: a transaction that called a function other than PostgreSQL's own leaves
  // its server to be reset (RESET ALL) before the next client, since such a function may have
  // set session settings pglane cannot see (a tenant set by a helper function). Costs one round
  // trip on the server's next use.
  bool reset_after_unknown_functions = true;
};

// Where a region's instances and their roles come from.
enum class TopologySource {
  kStatic,  // the instances listed in the config; roles from pg_is_in_recovery() and timelines
  kAurora,  // aurora_replica_status(): instances, the writer and lag; listed ones are seeds
};

struct Region {
  std::string name;
  TopologySource source = TopologySource::kStatic;
  // static: the instance expected to be the writer at first (the servers decide).
  // aurora: the cluster endpoint, where pglane first reads the topology ("cluster_endpoint").
  Endpoint writer;
  std::vector<Endpoint> readers;  // static only: the other instances
  // aurora: instance id -> address. An id not listed is "instance_host_pattern" with '?'
  // replaced by the id, on the cluster endpoint's port. Neither: the instance cannot be used.
  std::map<std::string, Endpoint> instances;
  std::string instance_host_pattern;
  // aurora: the AWS region this config region is (aws_region in
  // aurora_global_db_instance_status()); default: the region's name.
  std::string aws_region;
  // aurora: the cluster is part of a Global Database: instances are placed in regions by
  // aurora_global_db_instance_status(), and writes follow the global writer.
  bool global_database = false;
};

struct Analytics {
  bool enabled = false;
  Endpoint endpoint;
  BackendCredential credential;
  std::string database;
};

// Whose committed writes a read must see (routing/floors.h). kSession is the client's own
// (its commit position); kTable adds every client's (and gateway's) writes to the tables read;
// kDatabase every write to the database; kWindow keeps a writing client's reads on the writer
// for a while (servers without LSNs); kOff none.
enum class ReadYourWrites { kSession, kWindow, kOff, kTable, kDatabase };
enum class NoReplica { kWriter, kError };

// Read/write splitting (transaction pooling only; session pooling keeps every client on the
// writer).
struct RoutingSection {
  bool enabled = true;
  int max_replica_lag_ms = 1000;  // replicas further behind than this serve no reads
  ReadYourWrites read_your_writes = ReadYourWrites::kTable;
  int read_your_writes_window_ms = 2000;      // "window": reads stay on the writer this long
  NoReplica no_replica = NoReplica::kWriter;  // when no replica qualifies for a read
  // Other regions' replicas serve reads when none of the home region's qualifies (else
  // no_replica decides).
  bool remote_replicas = true;
  // Volatile functions that do not write (anything else volatile sends a statement to the
  // writer). Names are matched unqualified or in pg_catalog.
  std::vector<std::string> read_only_functions = {"random",
                                                  "clock_timestamp",
                                                  "timeofday",
                                                  "gen_random_uuid",
                                                  "pg_is_in_recovery",
                                                  "pg_last_wal_replay_lsn",
                                                  "pg_last_wal_receive_lsn",
                                                  "pg_last_xact_replay_timestamp",
                                                  "pg_sleep"};
  int analysis_cache_size = 10000;  // analyses kept per worker
  int catalog_refresh_ms = 60000;   // how often pg_proc volatility is re-read
};

// The health checker: every endpoint is probed on its own thread with libpq.
struct HealthSection {
  int interval_ms = 1000;
  int timeout_ms = 1000;
  int fall = 2;  // consecutive failures before an endpoint is down
  int rise = 1;  // consecutive successes before it is up again
  // Failover: while the writer is missing or suspect, every instance is probed this often...
  int failover_interval_ms = 100;
  // ... and a unit that needs the writer waits this long for one before it fails.
  int failover_timeout_ms = 30000;
  BackendCredential credential;  // empty user = backend.service
  // A client certificate and key (PEM) the probes present over TLS, for a role that logs in
  // with it (pg_hba "cert") instead of a password. Empty = none.
  std::string cert_file;
  std::string key_file;
  std::string database = "postgres";
};

// The admin console (a virtual database) and the metrics endpoint.
struct AdminSection {
  std::string database = "pglane";       // the console's database name
  std::vector<std::string> users;        // may run every command
  std::vector<std::string> stats_users;  // SHOW commands only
  bool metrics = false;                  // metrics_listen was set
  Endpoint metrics_listen;               // /metrics and /healthz (HTTP, or HTTPS with a cert)
  std::string metrics_cert_file;
  std::string metrics_key_file;
};

// Redis (ElastiCache): where gateways share freshness floors (and, later, cached results).
struct RedisSection {
  bool enabled = false;  // the [redis] table is present
  Endpoint endpoint{"127.0.0.1", 6379};
  bool tls = true;
  std::string ca_file;      // empty: the system's CA store
  std::string server_name;  // the name the certificate must carry (and SNI); empty: the host
  std::string cert_file;    // client certificate (optional, with key_file)
  std::string key_file;
  BackendCredential credential;  // ACL user and password (both optional)
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 250;
  std::string floor_channel = "pglane:floors";  // Pub/Sub channel every gateway shares
  // How long a writing transaction's commit acknowledgement may wait for Redis to take its
  // floor (so that other gateways learn of it first). 0: publish without waiting.
  int floor_wait_ms = 50;
  // Redis Cluster (ElastiCache cluster mode enabled): floors travel by sharded Pub/Sub
  // (SPUBLISH/SSUBSCRIBE at the channel's slot owner) so that a published floor has reached
  // the subscribers before the commit is acknowledged; plain PUBLISH would cross the cluster
  // bus later. Commands follow MOVED/ASK either way.
  bool cluster = false;
};

// The result cache (docs/internals.md, "Result cache"): hot SELECTs answered from Redis. Needs
// [redis]; versions of the tables written are kept there so an entry is never older than a
// committed write.
struct CacheSection {
  bool enabled = false;
  // Reads of only these tables are cached ("name" matches any schema, "schema.name" one).
  std::vector<std::string> tables;
  bool hints = true;   // a /* pglane: cache ttl=30s */ comment caches its statement too
  int ttl_ms = 30000;  // entries' lifetime (a hint's ttl overrides it, up to max_ttl_ms)
  int max_ttl_ms = 3600000;
  int max_entry_bytes = 1 << 20;  // larger results are not stored
  std::string hmac_key;           // from hmac_key_file: entries are signed with it
  std::string key_prefix = "pglane";
  bool encrypt = false;  // answers AES-256-GCM encrypted in Redis (key derived from hmac_key)
  int auto_after = 0;    // cache any eligible statement seen this often in a minute (0: never)
  // The in-process layer (per gateway, split between workers): hits served from memory while
  // no floor of their tables has moved. 0: off.
  int64_t local_bytes = 16 << 20;
};

struct Config {
  std::string path;  // the file it was loaded from
  ProxySection proxy;
  ClientTls tls;
  BackendSection backend;
  PoolSection pool;
  std::vector<Region> regions;
  Analytics analytics;
  RoutingSection routing;
  HealthSection health;
  AdminSection admin;
  RedisSection redis;
  CacheSection cache;

  // The writer of the gateway's own region (the first region if `proxy.region` is empty).
  const Region& home_region() const;
};

using ConfigPtr = std::shared_ptr<const Config>;

}  // namespace pglane::conf
