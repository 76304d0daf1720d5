#include "proxy/metrics_http.h"

#include <atomic>
#include <chrono>
#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "proxy/floor_sync.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/result_cache.h"
#include "proxy/sessions.h"
#include "proxy/stats.h"
#include "proxy/topology.h"

#ifndef PGLANE_VERSION
#define PGLANE_VERSION "0.1.0"
#endif

namespace pglane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::atomic<bool> g_draining{false};

std::string label_value(absl::string_view v) {
  return absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

// Text exposition: one HELP and TYPE per family, then its samples.
class Exposition {
 public:
  void family(absl::string_view name, absl::string_view type, absl::string_view help) {
    absl::StrAppend(&out_, "# HELP pglane_", name, " ", help, "\n# TYPE pglane_", name, " ", type,
                    "\n");
  }
  void sample(absl::string_view name, absl::string_view labels, double v) {
    absl::StrAppend(&out_, "pglane_", name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", absl::StrFormat("%.17g", v), "\n");
  }
  void one(absl::string_view name, absl::string_view type, absl::string_view help, double v) {
    family(name, type, help);
    sample(name, "", v);
  }
  // A histogram family's samples for one label set (`labels` without braces, may be empty).
  void histogram(absl::string_view name, absl::string_view labels, const Histogram::Totals& t) {
    std::string prefix = labels.empty() ? "" : absl::StrCat(labels, ",");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < Histogram::kBoundsUs.size(); ++i) {
      cumulative += t.buckets[i];
      sample(absl::StrCat(name, "_bucket"),
             absl::StrCat(prefix, "le=\"",
                          absl::StrFormat("%g", static_cast<double>(Histogram::kBoundsUs[i]) / 1e6),
                          "\""),
             static_cast<double>(cumulative));
    }
    cumulative += t.buckets.back();
    sample(absl::StrCat(name, "_bucket"), absl::StrCat(prefix, "le=\"+Inf\""),
           static_cast<double>(cumulative));
    sample(absl::StrCat(name, "_sum"), labels, static_cast<double>(t.sum_us) / 1e6);
    sample(absl::StrCat(name, "_count"), labels, static_cast<double>(cumulative));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

void set_draining(bool draining) {
  g_draining.store(draining);
}

bool healthy(std::string& why) {
  if (g_draining.load()) {
    why = "shutting down";
    return false;
  }
  Topology* t = topology();
  if (t != nullptr && t->writer() == nullptr) {
    why = "no writer";
    return false;
  }
  return true;
}

std::string prometheus_text() {
  Exposition x;
  const Stats& s = stats();
  x.one("up", "gauge", "1 while pglane runs.", 1);
  x.one("info", "gauge", "pglane's version, as a label.", 1);
  // (info's label is added below by hand: families with labels need them on the sample.)
  x.one("clients_active", "gauge", "Client sessions open now.", s.clients_active.load());
  x.one("server_connections_open", "gauge", "Server connections open now.",
        s.server_conns_open.load());
  x.one("paused", "gauge", "1 while some database is paused (PAUSE).", pause_gate().any() ? 1 : 0);
  x.one("draining", "gauge", "1 while shutting down.", g_draining.load() ? 1 : 0);
  struct C {
    const char* name;
    const std::atomic<int64_t>& v;
    const char* help;
  };
  for (const C& c :
       {C{"clients", s.clients_total, "Client connections accepted."},
        C{"clients_rejected_max_conn", s.clients_rejected_max_conn,
          "Clients refused at proxy.max_client_conn."},
        C{"auth_failures", s.auth_failures, "Failed client logins."},
        C{"protocol_violations", s.protocol_violations,
          "Clients closed for breaking the protocol."},
        C{"pool_timeouts", s.pool_timeouts,
          "Clients that waited pool.queue_timeout_ms for a server in vain."},
        C{"server_connects", s.server_connects, "Server connections opened."},
        C{"server_connect_failures", s.server_connect_failures,
          "Server connections that failed to open."},
        C{"server_resets", s.server_resets, "Server connections reset (RESET ALL)."},
        C{"server_closed_dirty", s.server_closed_dirty,
          "Server connections closed in an unknown state."},
        C{"cancels_forwarded", s.cancels_forwarded, "Cancel requests forwarded."},
        C{"cancels_unmatched", s.cancels_unmatched, "Cancel requests for no known client."},
        C{"server_lost", s.server_lost, "Server connections lost under a client."},
        C{"outcome_unknown", s.outcome_unknown, "Clients told 08007: a commit may have happened."},
        C{"writer_timeouts", s.writer_timeouts,
          "Units that found no writer within health.failover_timeout_ms."},
        C{"idle_timeouts", s.idle_timeouts, "Clients closed for idleness."},
        C{"sessions_pinned", s.sessions_pinned, "Sessions pinned to their server connection."},
        C{"sessions_shut_down", s.sessions_shut_down,
          "Sessions ended by a shutdown or KILL (57P01)."}}) {
    x.one(absl::StrCat(c.name, "_total"), "counter", c.help, static_cast<double>(c.v.load()));
  }

  if (const FloorSync* fs = floor_sync()) {
    const FloorSyncStats& f = fs->stats();
    auto d = [](const std::atomic<uint64_t>& v) { return static_cast<double>(v.load()); };
    x.one("floor_channel_up", "gauge", "1 while subscribed to the Redis floor channel.",
          fs->subscribed() ? 1 : 0);
    x.one("floor_published_total", "counter", "Floor messages Redis took.", d(f.published));
    x.one("floor_publish_failures_total", "counter",
          "Floor messages Redis did not take (down, slow, refused).", d(f.publish_failures));
    x.one("floor_received_total", "counter", "Other gateways' floor messages applied.",
          d(f.received));
    x.one("floor_resyncs_total", "counter",
          "Times every floor was raised because messages may have been missed.", d(f.resyncs));
    x.family("floor_propagation_seconds", "histogram",
             "From another gateway's publish to its floor applied here (wall clocks).");
    double cumulative = 0;
    for (size_t i = 0; i < FloorSyncStats::kDelayBoundsUs.size(); ++i) {
      cumulative += d(f.delay_buckets[i]);
      x.sample(
          "floor_propagation_seconds_bucket",
          absl::StrCat("le=\"", static_cast<double>(FloorSyncStats::kDelayBoundsUs[i]) / 1e6, "\""),
          cumulative);
    }
    x.sample("floor_propagation_seconds_bucket", "le=\"+Inf\"", d(f.received));
    x.sample("floor_propagation_seconds_sum", "", d(f.delay_sum_us) / 1e6);
    x.sample("floor_propagation_seconds_count", "", d(f.received));
    x.one("floor_propagation_max_seconds", "gauge", "The longest propagation seen.",
          d(f.delay_max_us) / 1e6);
  }

  if (ResultCache* rc = result_cache()) {
    const ResultCacheStats& c = rc->stats();
    auto d = [](const std::atomic<uint64_t>& v) { return static_cast<double>(v.load()); };
    struct K {
      const char* name;
      const std::atomic<uint64_t>& v;
      const char* help;
    };
    for (const K& k : {K{"cache_lookups_total", c.lookups, "Reads looked up in the result cache."},
                       K{"cache_hits_total", c.hits, "Reads answered from the result cache."},
                       K{"cache_local_hits_total", c.local_hits,
                         "Hits answered from the in-process layer, without Redis."},
                       K{"cache_misses_total", c.misses, "Lookups that found no entry."},
                       K{"cache_stale_total", c.stale,
                         "Entries found whose tables were written since: not served."},
                       K{"cache_rejected_total", c.rejected,
                         "Entries not trusted: bad signature, or older than a Redis reconnect."},
                       K{"cache_unavailable_total", c.unavailable,
                         "Lookups Redis did not answer (down, slow, breaker open)."},
                       K{"cache_stores_total", c.stores, "Answers stored."},
                       K{"cache_store_failures_total", c.store_failures, "Stores Redis refused."},
                       K{"cache_not_stored_total", c.not_stored,
                         "Misses whose answer was not stored (error, too large, no version)."},
                       K{"cache_uncacheable_total", c.uncacheable,
                         "Reads no rule or test let into the cache."}}) {
      x.one(k.name, "counter", k.help, d(k.v));
    }
    x.family("cache_hit_seconds", "histogram", "From lookup to the answer written, for hits.");
    x.sample("cache_hit_seconds_bucket", "le=\"0.001\"", d(c.hit_le_1ms));
    x.sample("cache_hit_seconds_bucket", "le=\"0.005\"", d(c.hit_le_5ms));
    x.sample("cache_hit_seconds_bucket", "le=\"+Inf\"", d(c.hits));
    x.sample("cache_hit_seconds_sum", "", d(c.hit_us_sum) / 1e6);
    x.sample("cache_hit_seconds_count", "", d(c.hits));
  }

  Topology* t = topology();
  if (t != nullptr) {
    const RouteStats& r = t->stats();
    x.family("routes_total", "counter", "Units of work by where they were routed.");
    for (auto [route, v] :
         {std::pair{"read_local", &r.reads_local}, std::pair{"read_remote", &r.reads_remote},
          std::pair{"read_writer", &r.reads_writer}, std::pair{"write", &r.writes},
          std::pair{"analytics", &r.analytics}}) {
      x.sample("routes_total", absl::StrCat("route=\"", route, "\""),
               static_cast<double>(v->load()));
    }
    x.one("route_read_your_writes_total", "counter",
          "Reads sent to the writer by read-your-writes.", static_cast<double>(r.reads_ryw.load()));
    x.one("route_retries_total", "counter", "Reads retried after their replica failed.",
          static_cast<double>(r.retries.load()));
    x.one("route_reroutes_total", "counter", "Pipelined units that needed another server.",
          static_cast<double>(r.reroutes.load()));
    x.one("writer_changes_total", "counter", "Times the writer changed (failover).",
          static_cast<double>(t->writer_changes()));
    std::vector<EndpointView> eps = t->view();
    auto labels = [](const EndpointView& e) {
      return absl::StrCat("endpoint=\"", label_value(e.name), "\",region=\"", label_value(e.region),
                          "\",role=\"", e.role, "\"");
    };
    x.family("endpoint_up", "gauge", "1 when the endpoint passes its health checks.");
    for (const auto& e : eps)
      x.sample("endpoint_up", labels(e), e.up ? 1 : 0);
    x.family("endpoint_lag_seconds", "gauge", "Replica lag behind the writer.");
    for (const auto& e : eps)
      x.sample("endpoint_lag_seconds", labels(e), e.lag_ms / 1e3);
    x.family("endpoint_rtt_seconds", "gauge", "Round trip of the latest health probe.");
    for (const auto& e : eps)
      x.sample("endpoint_rtt_seconds", labels(e), e.rtt_us / 1e6);
    x.family("endpoint_outstanding", "gauge", "Transactions pglane runs on the endpoint now.");
    for (const auto& e : eps)
      x.sample("endpoint_outstanding", labels(e), e.outstanding);
    x.family("endpoint_reads_total", "counter", "Units routed to the endpoint as reads.");
    for (const auto& e : eps) {
      x.sample("endpoint_reads_total", labels(e), static_cast<double>(e.reads));
    }
    x.family("endpoint_probes_failed_total", "counter", "Failed health probes.");
    for (const auto& e : eps) {
      x.sample("endpoint_probes_failed_total", labels(e), static_cast<double>(e.probes_failed));
    }
  }

  std::vector<PoolView> pools_now = pools().view();
  x.family("pool_server_connections", "gauge", "Server connections per pool and state.");
  for (const PoolView& v : pools_now) {
    std::string l =
        absl::StrCat("database=\"", label_value(v.database), "\",user=\"", label_value(v.user),
                     "\",endpoint=\"", label_value(v.endpoint), "\"");
    x.sample("pool_server_connections", absl::StrCat(l, ",state=\"idle\""), v.idle);
    x.sample("pool_server_connections", absl::StrCat(l, ",state=\"active\""), v.open - v.idle);
  }
  x.family("pool_clients_waiting", "gauge", "Clients queued for a server connection.");
  for (const PoolView& v : pools_now) {
    x.sample("pool_clients_waiting",
             absl::StrCat("database=\"", label_value(v.database), "\",user=\"", label_value(v.user),
                          "\",endpoint=\"", label_value(v.endpoint), "\""),
             v.waiting);
  }

  // Per-worker measurements, summed.
  std::array<Histogram::Totals, static_cast<size_t>(RouteKind::kCount)> by_route;
  Histogram::Totals pool_wait;
  for (int i = 0; i < worker_count(); ++i) {
    WorkerMetrics& w = worker_metrics(i);
    for (size_t k = 0; k < by_route.size(); ++k) {
      by_route[k].add(w.xact_by_route[k]);
    }
    pool_wait.add(w.pool_wait);
  }
  x.family("transaction_duration_seconds", "histogram",
           "A unit of work's time on its server (a transaction, or an autocommit statement), by "
           "where it ran.");
  for (size_t k = 0; k < by_route.size(); ++k) {
    x.histogram("transaction_duration_seconds",
                absl::StrCat("route=\"", route_kind_name(static_cast<RouteKind>(k)), "\""),
                by_route[k]);
  }
  x.family("pool_wait_seconds", "histogram",
           "A unit's wait for a server connection, brought to the client's settings.");
  x.histogram("pool_wait_seconds", "", pool_wait);
  struct U {
    const char* name;
    uint64_t UserTotals::*field;
    const char* help;
  };
  const auto users = sum_user_stats();
  for (const U& u : {U{"transactions_total", &UserTotals::transactions, "Units of work."},
                     U{"queries_total", &UserTotals::queries, "Query and Execute messages."},
                     U{"bytes_received_total", &UserTotals::bytes_in, "Bytes from clients."},
                     U{"bytes_sent_total", &UserTotals::bytes_out, "Bytes to clients."}}) {
    x.family(u.name, "counter", u.help);
    for (const auto& [k, v] : users) {
      x.sample(u.name,
               absl::StrCat("database=\"", label_value(k.first), "\",user=\"",
                            label_value(k.second), "\""),
               static_cast<double>(v.*u.field));
    }
  }
  std::string text = x.take();
  // The info gauge carries the version.
  absl::StrReplaceAll(
      {{"pglane_info 1\n", absl::StrCat("pglane_info{version=\"", PGLANE_VERSION, "\"} 1\n")}},
      &text);
  return text;
}

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

http::response<http::string_body> answer(const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "pglane");
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.body() = "only GET\n";
  } else if (target == "/metrics") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = prometheus_text();
  } else if (target == "/healthz") {
    std::string why;
    bool ok = healthy(why);
    res.result(ok ? http::status::ok : http::status::service_unavailable);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = ok ? "ok\n" : why + "\n";
  } else {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "pglane serves /metrics and /healthz\n";
  }
  res.prepare_payload();
  if (req.method() == http::verb::head) {
    res.body().clear();  // Content-Length stays that of the GET answer
  }
  return res;
}

// One HTTP connection: requests in turn while the client keeps it alive, each under a timeout.
template <typename StreamT>
asio::awaitable<void> serve_http(StreamT stream) {
  beast::flat_buffer buffer;
  for (;;) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(8 * 1024);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUse);
    if (ec) {
      break;
    }
    http::response<http::string_body> res = answer(parser.get());
    const bool keep = res.keep_alive();
    auto [wec, wn] = co_await http::async_write(stream, res, kUse);
    if (wec || !keep) {
      break;
    }
  }
  beast::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

class Server : public MetricsServer {
 public:
  Server(asio::io_context& io, std::unique_ptr<asio::ssl::context> tls)
      : io_(io), acceptor_(io), tls_(std::move(tls)) {}

  absl::Status listen(const conf::Endpoint& where) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(where.host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin.metrics_listen: \"", where.host, "\" is not an IP address"));
    }
    tcp::endpoint ep(addr, where.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    // A successor (online upgrade) binds the same port while this process drains.
    using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    if (!ec) {
      acceptor_.set_option(reuse_port(true), ec);
    }
    if (!ec) {
      acceptor_.bind(ep, ec);
    }
    if (!ec) {
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return absl::UnavailableError(absl::StrCat("admin.metrics_listen: cannot listen on ",
                                                 where.to_string(), ": ", ec.message()));
    }
    asio::co_spawn(io_, accept_loop(), asio::detached);
    return absl::OkStatus();
  }

  void stop() override {
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUse);
      if (ec) {
        if (!acceptor_.is_open()) {
          co_return;
        }
        // EMFILE and friends: back off instead of spinning on the control thread.
        asio::steady_timer t(io_, std::chrono::milliseconds(50));
        co_await t.async_wait(kUse);
        continue;
      }
      if (tls_) {
        asio::co_spawn(io_, serve_tls(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(io_, serve_http(beast::tcp_stream(std::move(socket))), asio::detached);
      }
    }
  }

  asio::awaitable<void> serve_tls(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kUse);
    if (!ec) {
      co_await serve_http(std::move(stream));
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::unique_ptr<asio::ssl::context> tls_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::start(asio::io_context& io,
                                                                    const conf::Config& cfg) {
  std::unique_ptr<asio::ssl::context> tls;
  if (!cfg.admin.metrics_cert_file.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    tls->use_certificate_chain_file(cfg.admin.metrics_cert_file, ec);
    if (!ec) {
      tls->use_private_key_file(cfg.admin.metrics_key_file, asio::ssl::context::pem, ec);
    }
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin.metrics_cert_file/metrics_key_file: ", ec.message()));
    }
  }
  auto server = std::make_unique<Server>(io, std::move(tls));
  if (absl::Status st = server->listen(cfg.admin.metrics_listen); !st.ok()) {
    return st;
  }
  return std::unique_ptr<MetricsServer>(std::move(server));
}

}  // namespace pglane::proxy
