// The metrics endpoint (admin.metrics_listen): GET /metrics in Prometheus' text exposition format
// (version 0.0.4) and GET /healthz for load balancers, over HTTP or, with
// admin.metrics_cert_file, HTTPS. Boost.Beast on the control thread's io_context: a scrape reads
// the workers' counters (relaxed atomics) and never runs on a worker.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "absl/status/statusor.h"
#include "conf/config.h"

namespace pglane::proxy {

// Every metric, as /metrics serves it.
std::string prometheus_text();

// /healthz: true (200) when pglane accepts clients and has a writer to send them to; `why` says
// what is wrong otherwise (503).
bool healthy(std::string& why);
// Shutting down: /healthz answers 503 so that load balancers stop sending clients.
void set_draining(bool draining);

class MetricsServer {
 public:
  // Listens on admin.metrics_listen (an IP address and port). The caller runs `io`.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> start(boost::asio::io_context& io,
                                                              const conf::Config& cfg);
  virtual ~MetricsServer() = default;
  virtual void stop() = 0;
};

}  // namespace pglane::proxy
