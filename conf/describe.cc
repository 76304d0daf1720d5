#include "conf/describe.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pglane::conf {

namespace {

const char* name(LogLevel v) {
  static constexpr const char* k[] = {"debug", "info", "warning", "error"};
  return k[static_cast<int>(v)];
}
const char* name(ClientTlsMode v) {
  static constexpr const char* k[] = {"disable", "allow", "prefer", "require"};
  return k[static_cast<int>(v)];
}
const char* name(ServerTlsMode v) {
  static constexpr const char* k[] = {"disable", "prefer", "require", "verify-ca", "verify-full"};
  return k[static_cast<int>(v)];
}
const char* name(ReadYourWrites v) {
  static constexpr const char* k[] = {"session", "window", "off", "table", "database"};
  return k[static_cast<int>(v)];
}

std::string b(bool v) {
  return v ? "true" : "false";
}
std::string secret(const std::string& s) {
  return s.empty() ? "" : "********";
}

class Lines {
 public:
  template <typename T>
  void add(const std::string& key, const T& value) {
    if constexpr (std::is_convertible_v<T, std::string>) {
      out.emplace_back(key, std::string(value));
    } else {
      out.emplace_back(key, absl::StrCat(value));
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
};

}  // namespace

std::vector<std::pair<std::string, std::string>> describe(const Config& c) {
  Lines l;
  l.add("config_file", c.path);
  l.add("proxy.listen_addr", c.proxy.listen_addr);
  l.add("proxy.listen_port", c.proxy.listen_port);
  l.add("proxy.workers", c.proxy.workers);
  l.add("proxy.region", c.proxy.region);
  l.add("proxy.max_client_conn", c.proxy.max_client_conn);
  l.add("proxy.max_message_size", c.proxy.max_message_size);
  l.add("proxy.auth_timeout_ms", c.proxy.auth_timeout_ms);
  l.add("proxy.client_idle_timeout_ms", c.proxy.client_idle_timeout_ms);
  l.add("proxy.shutdown_timeout_ms", c.proxy.shutdown_timeout_ms);
  l.add("proxy.log_level", name(c.proxy.log_level));
  static constexpr const char* kFormats[] = {"text", "logfmt", "json"};
  l.add("proxy.log_format", kFormats[static_cast<int>(c.proxy.log_format)]);
  l.add("proxy.slow_transaction_ms", c.proxy.slow_transaction_ms);
  l.add("proxy.users_file", c.proxy.users_file);
  l.add("tls.mode", name(c.tls.mode));
  l.add("tls.cert_file", c.tls.cert_file);
  l.add("tls.key_file", c.tls.key_file);
  l.add("tls.ca_file", c.tls.ca_file);
  l.add("tls.verify_client", b(c.tls.verify_client));
  l.add("tls.min_version", c.tls.min_version);
  l.add("backend.user", c.backend.service.user);
  l.add("backend.password", secret(c.backend.service.password));
  for (const auto& [user, cred] : c.backend.per_user) {
    l.add(absl::StrCat("backend.users.", user, ".user"), cred.user);
    l.add(absl::StrCat("backend.users.", user, ".password"), secret(cred.password));
  }
  l.add("backend.tls.mode", name(c.backend.tls.mode));
  l.add("backend.tls.ca_file", c.backend.tls.ca_file);
  l.add("backend.connect_timeout_ms", c.backend.connect_timeout_ms);
  l.add("pool.mode", c.pool.mode == PoolMode::kTransaction ? "transaction" : "session");
  l.add("pool.size", c.pool.size);
  l.add("pool.queue_timeout_ms", c.pool.queue_timeout_ms);
  l.add("pool.server_idle_timeout_ms", c.pool.server_idle_timeout_ms);
  l.add("pool.max_prepared_statements", c.pool.max_prepared_statements);
  l.add("pool.reset_after_unknown_functions", b(c.pool.reset_after_unknown_functions));
  for (size_t i = 0; i < c.regions.size(); ++i) {
    const Region& r = c.regions[i];
    std::string p = absl::StrCat("regions[", i, "].");
    l.add(p + "name", r.name);
    l.add(p + "source", r.source == TopologySource::kAurora ? "aurora" : "static");
    l.add(p + (r.source == TopologySource::kAurora ? "cluster_endpoint" : "writer"),
          r.writer.to_string());
    std::vector<std::string> readers;
    for (const Endpoint& e : r.readers) {
      readers.push_back(e.to_string());
    }
    if (!readers.empty()) {
      l.add(p + "readers", absl::StrJoin(readers, ", "));
    }
    for (const auto& [id, e] : r.instances) {
      l.add(absl::StrCat(p, "instances.", id), e.to_string());
    }
    if (!r.instance_host_pattern.empty()) {
      l.add(p + "instance_host_pattern", r.instance_host_pattern);
    }
    if (r.source == TopologySource::kAurora) {
      l.add(p + "aws_region", r.aws_region);
      l.add(p + "global_database", b(r.global_database));
    }
  }
  l.add("analytics.enabled", b(c.analytics.enabled));
  if (c.analytics.enabled) {
    l.add("analytics.endpoint", c.analytics.endpoint.to_string());
    l.add("analytics.user", c.analytics.credential.user);
    l.add("analytics.password", secret(c.analytics.credential.password));
    l.add("analytics.database", c.analytics.database);
  }
  l.add("routing.enabled", b(c.routing.enabled));
  l.add("routing.max_replica_lag_ms", c.routing.max_replica_lag_ms);
  l.add("routing.read_your_writes", name(c.routing.read_your_writes));
  l.add("routing.read_your_writes_window_ms", c.routing.read_your_writes_window_ms);
  l.add("routing.no_replica", c.routing.no_replica == NoReplica::kWriter ? "writer" : "error");
  l.add("routing.remote_replicas", b(c.routing.remote_replicas));
  l.add("routing.read_only_functions", absl::StrJoin(c.routing.read_only_functions, ", "));
  l.add("routing.analysis_cache_size", c.routing.analysis_cache_size);
  l.add("routing.catalog_refresh_ms", c.routing.catalog_refresh_ms);
  l.add("health.interval_ms", c.health.interval_ms);
  l.add("health.timeout_ms", c.health.timeout_ms);
  l.add("health.fall", c.health.fall);
  l.add("health.rise", c.health.rise);
  l.add("health.failover_interval_ms", c.health.failover_interval_ms);
  l.add("health.failover_timeout_ms", c.health.failover_timeout_ms);
  l.add("health.user", c.health.credential.user);
  l.add("health.password", secret(c.health.credential.password));
  l.add("health.cert_file", c.health.cert_file);
  l.add("health.key_file", c.health.key_file);
  l.add("health.database", c.health.database);
  if (c.redis.enabled) {
    l.add("redis.endpoint", c.redis.endpoint.to_string());
    l.add("redis.tls", b(c.redis.tls));
    l.add("redis.ca_file", c.redis.ca_file);
    l.add("redis.server_name", c.redis.server_name);
    l.add("redis.cert_file", c.redis.cert_file);
    l.add("redis.key_file", c.redis.key_file);
    l.add("redis.user", c.redis.credential.user);
    l.add("redis.password", secret(c.redis.credential.password));
    l.add("redis.connect_timeout_ms", c.redis.connect_timeout_ms);
    l.add("redis.command_timeout_ms", c.redis.command_timeout_ms);
    l.add("redis.floor_channel", c.redis.floor_channel);
    l.add("redis.floor_wait_ms", c.redis.floor_wait_ms);
    l.add("redis.cluster", b(c.redis.cluster));
  }
  if (c.cache.enabled) {
    l.add("cache.enabled", b(c.cache.enabled));
    l.add("cache.tables", absl::StrJoin(c.cache.tables, ", "));
    l.add("cache.hints", b(c.cache.hints));
    l.add("cache.ttl_ms", c.cache.ttl_ms);
    l.add("cache.max_ttl_ms", c.cache.max_ttl_ms);
    l.add("cache.max_entry_bytes", c.cache.max_entry_bytes);
    l.add("cache.hmac_key_file", secret(c.cache.hmac_key));
    l.add("cache.key_prefix", c.cache.key_prefix);
    l.add("cache.local_bytes", c.cache.local_bytes);
    l.add("cache.encrypt", b(c.cache.encrypt));
    l.add("cache.auto_after", c.cache.auto_after);
  }
  l.add("admin.database", c.admin.database);
  l.add("admin.users", absl::StrJoin(c.admin.users, ", "));
  l.add("admin.stats_users", absl::StrJoin(c.admin.stats_users, ", "));
  l.add("admin.metrics_listen", c.admin.metrics ? c.admin.metrics_listen.to_string() : "");
  l.add("admin.metrics_cert_file", c.admin.metrics_cert_file);
  l.add("admin.metrics_key_file", c.admin.metrics_key_file);
  return std::move(l.out);
}

std::vector<KeyChange> diff(const Config& before, const Config& after) {
  auto a = describe(before);
  auto b = describe(after);
  std::map<std::string, std::string> old_values(a.begin(), a.end());
  std::vector<KeyChange> out;
  for (const auto& [k, v] : b) {
    auto it = old_values.find(k);
    if (it == old_values.end()) {
      out.push_back({k, "", v});
      continue;
    }
    if (it->second != v) {
      out.push_back({k, it->second, v});
    }
    old_values.erase(it);
  }
  for (const auto& [k, v] : a) {
    if (old_values.count(k) > 0) {
      out.push_back({k, v, ""});
    }
  }
  return out;
}

}  // namespace pglane::conf
