// The TOML loader and validator for conf/proxy.toml (the users file: conf/users.cc).
//
// The loader walks every table once, collecting every problem it finds together with the line it
// was found on, and reports them all, one per line: unknown keys first (with the nearest known
// key when one is close: a typo), then the rest in file order. Checks that depend on other keys
// (tls.cert_file is required only when tls.mode is not "disable"; proxy.region must name a region)
// run only when the keys they depend on parsed cleanly, so one mistake never shows up as a
// different, misleading one.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "conf/files.h"
#include "conf/loader.h"
#include "conf/toml_reader.h"

namespace pglane::conf {

const Region& Config::home_region() const {
  static const Region no_region;  // only reachable with a Config the loader did not produce
  if (regions.empty()) {
    return no_region;
  }
  if (!proxy.region.empty()) {
    for (const Region& region : regions) {
      if (region.name == proxy.region) {
        return region;
      }
    }
  }
  return regions.front();
}

namespace {

class Loader : public TomlReader {
 public:
  using TomlReader::TomlReader;

  absl::Status load(const toml::table& root, Config& config) {
    Table doc{root, ""};
    check_keys(doc, {"proxy", "tls", "backend", "pool", "regions", "analytics", "routing", "health",
                     "admin", "redis", "cache"});
    load_proxy(doc, config.proxy);
    if (const toml::table* tls = subtable(doc, "tls")) {
      load_client_tls(Table{*tls, "tls"}, config.tls);
    }
    if (const toml::table* backend = subtable(doc, "backend")) {
      load_backend(Table{*backend, "backend"}, config.backend);
    }
    if (const toml::table* pool = subtable(doc, "pool")) {
      load_pool(Table{*pool, "pool"}, config.pool);
    }
    load_regions(doc, config);
    if (const toml::table* analytics = subtable(doc, "analytics")) {
      load_analytics(Table{*analytics, "analytics"}, config.analytics);
    }
    if (const toml::table* routing = subtable(doc, "routing")) {
      load_routing(Table{*routing, "routing"}, config.routing);
    }
    uint32_t health_line = 1;
    if (const toml::table* health = subtable(doc, "health")) {
      Table t{*health, "health"};
      health_line = t.line();
      load_health(t, config.health);
      if (!config.health.cert_file.empty() && config.backend.tls.mode == ServerTlsMode::kDisable) {
        fail(line(t, "cert_file"), "health.cert_file",
             "a client certificate needs TLS to the servers, but backend.tls.mode is "
             "\"disable\"");
      }
    }
    if (const toml::table* redis = subtable(doc, "redis")) {
      load_redis(Table{*redis, "redis"}, config.redis);
    }
    if (const toml::table* cache = subtable(doc, "cache")) {
      Table t{*cache, "cache"};
      load_cache(t, config.cache);
      if (config.cache.enabled && !config.redis.enabled) {
        fail(line(t, "enabled"), "cache.enabled",
             "the result cache keeps its entries in Redis: add a [redis] table");
      }
    }
    if (const toml::table* admin = subtable(doc, "admin")) {
      load_admin(Table{*admin, "admin"}, config.admin);
    }
    if (errors_.empty()) {
      check_health_login(config, health_line);  // a cross-section check: only once all else is fine
    }
    if (errors_.empty()) {
      return absl::OkStatus();
    }
    // Every problem, one per line: unknown keys first (a typo explains what follows from it),
    // then the rest in file order.
    std::stable_sort(errors_.begin(), errors_.end(), [](const Problem& a, const Problem& b) {
      return a.unknown_key != b.unknown_key ? a.unknown_key : a.line < b.line;
    });
    std::vector<std::string> lines;
    for (const Problem& p : errors_) {
      lines.push_back(p.message);
    }
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }

 private:
  void load_proxy(const Table& doc, ProxySection& proxy) {
    const toml::table* node = subtable(doc, "proxy");
    if (node == nullptr) {
      if (doc.node.get("proxy") == nullptr) {
        fail(1, "proxy.users_file", "missing required key (no [proxy] table)");
      }
      return;
    }
    Table t{*node, "proxy"};
    check_keys(t, {"listen_addr", "listen_port", "workers", "region", "max_client_conn",
                   "max_message_size", "auth_timeout_ms", "client_idle_timeout_ms", "log_level",
                   "users_file", "shutdown_timeout_ms", "log_format", "slow_transaction_ms"});
    get_nonempty_string(t, "listen_addr", proxy.listen_addr);
    get_int(t, "listen_port", 1, 65535, proxy.listen_port);
    get_int(t, "workers", 0, 256, proxy.workers);
    if (get_string(t, "region", proxy.region) == Got::kOk) {
      proxy_region_line_ = line(t, "region");
    }
    get_int(t, "max_client_conn", 1, 1000000, proxy.max_client_conn);
    get_int(t, "max_message_size", 1024, int64_t{1} << 30, proxy.max_message_size);
    get_int(t, "auth_timeout_ms", 100, 600000, proxy.auth_timeout_ms);
    get_int(t, "client_idle_timeout_ms", 0, INT_MAX, proxy.client_idle_timeout_ms);
    get_int(t, "shutdown_timeout_ms", 0, 86400000, proxy.shutdown_timeout_ms);
    get_int(t, "slow_transaction_ms", 0, 86400000, proxy.slow_transaction_ms);
    get_enum<LogFormat>(
        t, "log_format",
        {{"text", LogFormat::kText}, {"logfmt", LogFormat::kLogfmt}, {"json", LogFormat::kJson}},
        proxy.log_format);
    get_enum<LogLevel>(t, "log_level",
                       {{"debug", LogLevel::kDebug},
                        {"info", LogLevel::kInfo},
                        {"warning", LogLevel::kWarning},
                        {"error", LogLevel::kError}},
                       proxy.log_level);
    Got users = get_path(t, "users_file", proxy.users_file);
    if (users == Got::kAbsent) {
      missing(t, "users_file");
    } else if (users == Got::kOk) {
      require_readable(t, "users_file", proxy.users_file);
    }
  }

  void load_client_tls(const Table& t, ClientTls& tls) {
    check_keys(t, {"mode", "cert_file", "key_file", "ca_file", "verify_client", "min_version"});
    Got mode = get_enum<ClientTlsMode>(t, "mode",
                                       {{"disable", ClientTlsMode::kDisable},
                                        {"allow", ClientTlsMode::kAllow},
                                        {"prefer", ClientTlsMode::kPrefer},
                                        {"require", ClientTlsMode::kRequire}},
                                       tls.mode);
    Got cert = get_path(t, "cert_file", tls.cert_file);
    Got key = get_path(t, "key_file", tls.key_file);
    Got ca = get_path(t, "ca_file", tls.ca_file);
    Got verify = get_bool(t, "verify_client", tls.verify_client);
    get_enum<std::string>(t, "min_version", {{"1.2", "1.2"}, {"1.3", "1.3"}}, tls.min_version);
    if (mode != Got::kOk || tls.mode == ClientTlsMode::kDisable) {
      return;
    }
    std::string why = absl::StrCat("required when tls.mode is not \"disable\"");
    for (auto [name, got, path] : {std::tuple{"cert_file", cert, &tls.cert_file},
                                   std::tuple{"key_file", key, &tls.key_file}}) {
      if (got == Got::kAbsent) {
        fail(line(t, "mode"), t.key(name), why);
      } else if (got == Got::kOk) {
        require_readable(t, name, *path);
      }
    }
    if (verify == Got::kOk && tls.verify_client) {
      if (ca == Got::kAbsent) {
        fail(line(t, "verify_client"), t.key("ca_file"), "required when tls.verify_client is true");
      } else if (ca == Got::kOk) {
        require_readable(t, "ca_file", tls.ca_file);
      }
    }
  }

  // user, password and password_file of a credential table.
  void load_credential(const Table& t, BackendCredential& credential) {
    get_string(t, "user", credential.user);
    Got password = get_string(t, "password", credential.password);
    std::string password_file;
    if (get_path(t, "password_file", password_file) != Got::kOk) {
      return;
    }
    if (password == Got::kOk || password == Got::kBad) {
      fail(line(t, "password_file"), t.key("password_file"),
           absl::StrCat("set either ", t.key("password"), " or ", t.key("password_file"),
                        ", not both"));
      return;
    }
    std::string why;
    std::optional<std::string> contents = read_file(password_file, &why);
    if (!contents) {
      fail(line(t, "password_file"), t.key("password_file"),
           absl::StrCat("cannot read \"", password_file, "\": ", why));
      return;
    }
    absl::string_view first_line = *contents;
    first_line = first_line.substr(0, first_line.find('\n'));
    if (absl::EndsWith(first_line, "\r")) {
      first_line.remove_suffix(1);
    }
    if (first_line.empty()) {
      fail(line(t, "password_file"), t.key("password_file"),
           absl::StrCat("\"", password_file, "\" has an empty first line"));
      return;
    }
    credential.password = std::string(first_line);
  }

  void load_backend(const Table& t, BackendSection& backend) {
    check_keys(t, {"user", "password", "password_file", "connect_timeout_ms", "tls", "users"});
    load_credential(t, backend.service);
    get_int(t, "connect_timeout_ms", 100, 600000, backend.connect_timeout_ms);
    if (const toml::table* tls = subtable(t, "tls")) {
      load_server_tls(Table{*tls, "backend.tls"}, backend.tls);
    }
    if (const toml::table* users = subtable(t, "users")) {
      for (auto&& [name, node] : *users) {
        std::string path = absl::StrCat("backend.users.", to_absl(name.str()));
        if (!node.is_table()) {
          fail(line_of(node.source()), path,
               absl::StrCat("expected a table, got ", type_name(node.type())));
          continue;
        }
        Table user{*node.as_table(), path};
        check_keys(user, {"user", "password", "password_file"});
        load_credential(user, backend.per_user[std::string(name.str())]);
      }
    }
  }

  void load_server_tls(const Table& t, ServerTls& tls) {
    check_keys(t, {"mode", "ca_file"});
    Got mode = get_enum<ServerTlsMode>(t, "mode",
                                       {{"disable", ServerTlsMode::kDisable},
                                        {"prefer", ServerTlsMode::kPrefer},
                                        {"require", ServerTlsMode::kRequire},
                                        {"verify-ca", ServerTlsMode::kVerifyCa},
                                        {"verify-full", ServerTlsMode::kVerifyFull}},
                                       tls.mode);
    Got ca = get_path(t, "ca_file", tls.ca_file);
    bool verifies = tls.mode == ServerTlsMode::kVerifyCa || tls.mode == ServerTlsMode::kVerifyFull;
    if (mode != Got::kOk || !verifies) {
      return;
    }
    if (ca == Got::kAbsent) {
      fail(line(t, "mode"), t.key("ca_file"),
           "required when backend.tls.mode is \"verify-ca\" or \"verify-full\"");
    } else if (ca == Got::kOk) {
      require_readable(t, "ca_file", tls.ca_file);
    }
  }

  void load_pool(const Table& t, PoolSection& pool) {
    check_keys(t, {"mode", "size", "queue_timeout_ms", "server_idle_timeout_ms",
                   "max_prepared_statements", "reset_after_unknown_functions"});
    get_enum<PoolMode>(t, "mode",
                       {{"session", PoolMode::kSession}, {"transaction", PoolMode::kTransaction}},
                       pool.mode);
    get_int(t, "size", 1, 10000, pool.size);
    get_int(t, "queue_timeout_ms", 0, 3600000, pool.queue_timeout_ms);
    get_int(t, "server_idle_timeout_ms", 0, INT_MAX, pool.server_idle_timeout_ms);
    get_int(t, "max_prepared_statements", 1, 100000, pool.max_prepared_statements);
    get_bool(t, "reset_after_unknown_functions", pool.reset_after_unknown_functions);
  }

  void load_regions(const Table& doc, Config& config) {
    const toml::node* node = doc.node.get("regions");
    if (node == nullptr) {
      fail(1, "regions", "at least one [[regions]] table is required");
      return;
    }
    const toml::array* regions = node->as_array();
    if (regions == nullptr) {
      wrong_type(doc, "regions", *node, "an array of tables ([[regions]])");
      return;
    }
    if (regions->empty()) {
      fail(line_of(node->source()), "regions", "at least one region is required");
      return;
    }
    bool names_ok = true;
    for (size_t i = 0; i < regions->size(); ++i) {
      const toml::node& element = (*regions)[i];
      std::string path = absl::StrCat("regions[", i, "]");
      if (!element.is_table()) {
        fail(line_of(element.source()), path,
             absl::StrCat("expected a table, got ", type_name(element.type())));
        names_ok = false;
        continue;
      }
      Table t{*element.as_table(), path};
      Region region;
      get_enum(t, "source",
               Choices<TopologySource>{{"static", TopologySource::kStatic},
                                       {"aurora", TopologySource::kAurora}},
               region.source);
      if (region.source == TopologySource::kAurora) {
        check_keys(t, {"name", "source", "cluster_endpoint", "instances", "instance_host_pattern",
                       "aws_region", "global_database"});
      } else {
        check_keys(t, {"name", "source", "writer", "readers"});
      }
      Got name = get_nonempty_string(t, "name", region.name);
      if (name == Got::kAbsent) {
        missing(t, "name");
      }
      if (name != Got::kOk) {
        names_ok = false;
      } else {
        for (size_t j = 0; j < config.regions.size(); ++j) {
          if (config.regions[j].name == region.name) {
            fail(line(t, "name"), t.key("name"),
                 absl::StrCat("duplicate region \"", region.name, "\" (also regions[", j, "])"));
          }
        }
      }
      if (region.source == TopologySource::kAurora) {
        load_aurora_region(t, region);
      } else if (get_endpoint(t, "writer", region.writer) == Got::kAbsent) {
        missing(t, "writer");
      }
      if (const toml::node* readers = t.node.get("readers");
          readers != nullptr && region.source == TopologySource::kStatic) {
        if (!readers->is_array()) {
          wrong_type(t, "readers", *readers, "an array of \"host:port\" strings");
        } else {
          const toml::array& list = *readers->as_array();
          for (size_t k = 0; k < list.size(); ++k) {
            std::string key = absl::StrCat(path, ".readers[", k, "]");
            const toml::node& reader = list[k];
            if (!reader.is_string()) {
              fail(line_of(reader.source()), key,
                   absl::StrCat("expected a string, got ", type_name(reader.type())));
              continue;
            }
            std::string why;
            std::optional<Endpoint> endpoint = parse_endpoint(reader.as_string()->get(), &why);
            if (!endpoint) {
              fail(line_of(reader.source()), key, why);
              continue;
            }
            region.readers.push_back(std::move(*endpoint));
          }
        }
      }
      config.regions.push_back(std::move(region));
    }
    if (names_ok && !config.proxy.region.empty()) {
      std::vector<absl::string_view> names;
      for (const Region& region : config.regions) {
        names.push_back(region.name);
      }
      if (std::find(names.begin(), names.end(), config.proxy.region) == names.end()) {
        fail(proxy_region_line_, "proxy.region",
             absl::StrCat("unknown region \"", config.proxy.region,
                          "\" (regions are: ", absl::StrJoin(names, ", "), ")"));
      }
    }
  }

  // An aurora region: where to read the topology first, and how instance ids become addresses.
  void load_aurora_region(const Table& t, Region& region) {
    Got cluster = get_endpoint(t, "cluster_endpoint", region.writer);
    Got pattern = get_nonempty_string(t, "instance_host_pattern", region.instance_host_pattern);
    if (pattern == Got::kOk && std::count(region.instance_host_pattern.begin(),
                                          region.instance_host_pattern.end(), '?') != 1) {
      fail(line(t, "instance_host_pattern"), t.key("instance_host_pattern"),
           "must contain one '?' (where the instance id goes), e.g. "
           "\"?.abcdefghijkl.eu-west-1.rds.amazonaws.com\"");
    }
    if (pattern == Got::kOk && cluster != Got::kOk) {
      fail(line(t, "instance_host_pattern"), t.key("instance_host_pattern"),
           "needs cluster_endpoint (its port is the instances' port)");
    }
    if (const toml::table* map = subtable(t, "instances")) {
      Table m{*map, t.key("instances")};
      for (auto&& [id, node] : *map) {
        Endpoint endpoint;
        if (get_endpoint(m, to_absl(id.str()), endpoint) == Got::kOk) {
          region.instances.emplace(std::string(id.str()), std::move(endpoint));
        }
      }
    }
    if (cluster == Got::kAbsent && region.instances.empty()) {
      fail(t.line(), t.key("cluster_endpoint"),
           "an aurora region needs cluster_endpoint, or instances listed in [regions.instances]");
    } else if (pattern == Got::kAbsent && region.instances.empty()) {
      fail(t.line(), t.key("instance_host_pattern"),
           "an aurora region needs instance_host_pattern or [regions.instances] to reach the "
           "instances aurora_replica_status() names");
    }
    region.aws_region = region.name;
    get_nonempty_string(t, "aws_region", region.aws_region);
    get_bool(t, "global_database", region.global_database);
  }

  void load_analytics(const Table& t, Analytics& analytics) {
    check_keys(t, {"endpoint", "user", "password", "password_file", "database"});
    analytics.enabled = true;
    if (get_endpoint(t, "endpoint", analytics.endpoint) == Got::kAbsent) {
      missing(t, "endpoint");
    }
    load_credential(t, analytics.credential);
    get_string(t, "database", analytics.database);
  }

  void load_routing(const Table& t, RoutingSection& routing) {
    check_keys(t, {"enabled", "max_replica_lag_ms", "read_your_writes",
                   "read_your_writes_window_ms", "no_replica", "remote_replicas",
                   "read_only_functions", "analysis_cache_size", "catalog_refresh_ms"});
    get_bool(t, "enabled", routing.enabled);
    get_int(t, "max_replica_lag_ms", 0, 86400000, routing.max_replica_lag_ms);
    get_enum<ReadYourWrites>(t, "read_your_writes",
                             {{"table", ReadYourWrites::kTable},
                              {"database", ReadYourWrites::kDatabase},
                              {"session", ReadYourWrites::kSession},
                              {"window", ReadYourWrites::kWindow},
                              {"off", ReadYourWrites::kOff},
                              {"lsn", ReadYourWrites::kSession}},
                             routing.read_your_writes);
    get_int(t, "read_your_writes_window_ms", 0, 3600000, routing.read_your_writes_window_ms);
    get_enum<NoReplica>(t, "no_replica",
                        {{"writer", NoReplica::kWriter}, {"error", NoReplica::kError}},
                        routing.no_replica);
    get_bool(t, "remote_replicas", routing.remote_replicas);
    get_string_list(t, "read_only_functions", "function name", routing.read_only_functions);
    get_int(t, "analysis_cache_size", 0, 10000000, routing.analysis_cache_size);
    get_int(t, "catalog_refresh_ms", 1000, INT_MAX, routing.catalog_refresh_ms);
  }

  // With SCRAM pass-through ([backend] without user) the health checker has no role to log in
  // as unless [health] names one. It runs whenever there is more than one instance (roles can
  // change: failover) or an aurora region (the topology is read from the servers).
  void check_health_login(const Config& config, uint32_t health_line) {
    std::vector<std::string> instances;
    bool aurora = false;
    for (const Region& region : config.regions) {
      aurora |= region.source == TopologySource::kAurora;
      instances.push_back(region.writer.to_string());
      for (const Endpoint& reader : region.readers) {
        instances.push_back(reader.to_string());
      }
    }
    std::sort(instances.begin(), instances.end());
    const bool several = std::unique(instances.begin(), instances.end()) - instances.begin() > 1;
    if ((aurora || several) && config.health.credential.user.empty() &&
        config.health.cert_file.empty() && config.backend.service.user.empty()) {
      fail(health_line, "health.user",
           "required when [backend] has no user (SCRAM pass-through): the health checker logs "
           "in as a role of its own, with a password or cert_file/key_file");
    }
  }

  void load_health(const Table& t, HealthSection& health) {
    check_keys(t, {"interval_ms", "timeout_ms", "fall", "rise", "failover_interval_ms",
                   "failover_timeout_ms", "user", "password", "password_file", "cert_file",
                   "key_file", "database"});
    get_int(t, "interval_ms", 100, 3600000, health.interval_ms);
    get_int(t, "timeout_ms", 50, 600000, health.timeout_ms);
    get_int(t, "fall", 1, 100, health.fall);
    get_int(t, "rise", 1, 100, health.rise);
    get_int(t, "failover_interval_ms", 10, 60000, health.failover_interval_ms);
    get_int(t, "failover_timeout_ms", 0, 3600000, health.failover_timeout_ms);
    load_credential(t, health.credential);
    get_cert_pair(t, "cert_file", "key_file", health.cert_file, health.key_file);
    get_nonempty_string(t, "database", health.database);
  }

  void load_redis(const Table& t, RedisSection& redis) {
    check_keys(t, {"endpoint", "tls", "ca_file", "server_name", "cert_file", "key_file", "user",
                   "password", "password_file", "connect_timeout_ms", "command_timeout_ms",
                   "floor_channel", "floor_wait_ms", "cluster"});
    redis.enabled = true;
    redis.endpoint.port = 6379;
    if (get_endpoint(t, "endpoint", redis.endpoint) == Got::kAbsent) {
      missing(t, "endpoint");
    }
    get_bool(t, "tls", redis.tls);
    if (get_path(t, "ca_file", redis.ca_file) == Got::kOk) {
      require_readable(t, "ca_file", redis.ca_file);
    }
    get_string(t, "server_name", redis.server_name);
    get_cert_pair(t, "cert_file", "key_file", redis.cert_file, redis.key_file);
    load_credential(t, redis.credential);
    get_int(t, "connect_timeout_ms", 10, 60000, redis.connect_timeout_ms);
    get_int(t, "command_timeout_ms", 1, 60000, redis.command_timeout_ms);
    get_nonempty_string(t, "floor_channel", redis.floor_channel);
    get_int(t, "floor_wait_ms", 0, 10000, redis.floor_wait_ms);
    get_bool(t, "cluster", redis.cluster);
  }

  void load_cache(const Table& t, CacheSection& cache) {
    check_keys(t, {"enabled", "tables", "hints", "ttl_ms", "max_ttl_ms", "max_entry_bytes",
                   "hmac_key_file", "key_prefix", "local_bytes", "encrypt", "auto_after"});
    get_bool(t, "enabled", cache.enabled);
    get_string_list(t, "tables", "table name", cache.tables);
    get_bool(t, "hints", cache.hints);
    get_int(t, "ttl_ms", 100, 86400000, cache.ttl_ms);
    get_int(t, "max_ttl_ms", 100, 86400000, cache.max_ttl_ms);
    get_int(t, "max_entry_bytes", 1024, 512 << 20, cache.max_entry_bytes);
    get_nonempty_string(t, "key_prefix", cache.key_prefix);
    get_int(t, "local_bytes", 0, int64_t{64} << 30, cache.local_bytes);
    get_bool(t, "encrypt", cache.encrypt);
    get_int(t, "auto_after", 0, 1000000, cache.auto_after);
    std::string key_file;
    if (get_path(t, "hmac_key_file", key_file) != Got::kOk) {
      if (cache.enabled) {
        missing(t, "hmac_key_file");
      }
      return;
    }
    std::string why;
    std::optional<std::string> contents = read_file(key_file, &why);
    if (!contents) {
      fail(line(t, "hmac_key_file"), t.key("hmac_key_file"),
           absl::StrCat("cannot read \"", key_file, "\": ", why));
      return;
    }
    absl::string_view key = absl::StripAsciiWhitespace(*contents);
    if (key.size() < 32) {
      fail(line(t, "hmac_key_file"), t.key("hmac_key_file"),
           absl::StrCat("\"", key_file, "\" holds ", key.size(),
                        " bytes; the key must have at least 32 (openssl rand -hex 32)"));
      return;
    }
    cache.hmac_key = std::string(key);
  }

  void load_admin(const Table& t, AdminSection& admin) {
    check_keys(t, {"database", "users", "stats_users", "metrics_listen", "metrics_cert_file",
                   "metrics_key_file"});
    get_nonempty_string(t, "database", admin.database);
    get_string_list(t, "users", "user name", admin.users);
    get_string_list(t, "stats_users", "user name", admin.stats_users);
    std::string listen;
    if (get_string(t, "metrics_listen", listen) == Got::kOk && !listen.empty()) {
      get_endpoint(t, "metrics_listen", admin.metrics_listen);
      admin.metrics = true;
    }
    get_cert_pair(t, "metrics_cert_file", "metrics_key_file", admin.metrics_cert_file,
                  admin.metrics_key_file);
  }

  // A certificate and its key: readable files, both or neither.
  void get_cert_pair(const Table& t, const char* cert_key, const char* key_key,
                     std::string& cert_file, std::string& key_file) {
    Got cert = get_path(t, cert_key, cert_file);
    Got key = get_path(t, key_key, key_file);
    if (cert == Got::kOk) {
      require_readable(t, cert_key, cert_file);
    }
    if (key == Got::kOk) {
      require_readable(t, key_key, key_file);
    }
    if ((cert == Got::kOk) != (key == Got::kOk) && cert != Got::kBad && key != Got::kBad) {
      const char* absent = cert == Got::kOk ? key_key : cert_key;
      fail(line(t, cert == Got::kOk ? cert_key : key_key), t.key(absent),
           absl::StrCat(cert_key, " and ", key_key, " go together"));
    }
  }

  uint32_t proxy_region_line_ = 1;
};

}  // namespace

absl::StatusOr<ConfigPtr> parse_config(const std::string& text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    std::string message =
        absl::StrCat(path, ":", line_of(e.source()), ": syntax error: ", to_absl(e.description()));
    std::replace(message.begin(), message.end(), '\n', ' ');
    return absl::InvalidArgumentError(message);
  }
  auto config = std::make_shared<Config>();
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec).lexically_normal();
  config->path = absolute.string();
  Loader loader(path, absolute.parent_path());
  if (absl::Status status = loader.load(root, *config); !status.ok()) {
    return status;
  }
  return ConfigPtr(std::move(config));
}

absl::StatusOr<ConfigPtr> load_config(const std::string& path) {
  std::string why;
  std::optional<std::string> text = read_file(path, &why);
  if (!text) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", why));
  }
  return parse_config(*text, path);
}

}  // namespace pglane::conf
