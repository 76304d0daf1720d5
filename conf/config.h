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

struct Endpoint {
  std::string host;  // name or address; also the TLS SNI / verify-full name
  uint16_t port = 5432;
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
};

struct Region {
  std::string name;
  Endpoint writer;
  std::vector<Endpoint> readers;
};

struct Analytics {
  bool enabled = false;
  Endpoint endpoint;
  BackendCredential credential;
  std::string database;
};

struct Config {
  std::string path;  // the file it was loaded from
  ProxySection proxy;
  ClientTls tls;
  BackendSection backend;
  PoolSection pool;
  std::vector<Region> regions;
  Analytics analytics;

  // The writer of the gateway's own region (the first region if `proxy.region` is empty).
  const Region& home_region() const;
};

using ConfigPtr = std::shared_ptr<const Config>;

}  // namespace pglane::conf
