// Cost of one SCRAM-SHA-256 login at PostgreSQL's default 4096 iterations, both sides: the
// server (proxy facing clients) and the client (proxy logging in to servers). Each side runs
// PBKDF2 once (the server's is precomputed in the verifier), so the exchange is dominated by it.
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/scram.h"

namespace {

using namespace pglane::protocol;

void BM_ScramExchange(benchmark::State& state) {
  const ScramVerifier verifier = *parse_scram_verifier(make_scram_verifier("pencil", 4096));
  for (auto _ : state) {
    ScramServer server(verifier);
    ScramClient client("pencil");
    const auto server_first = server.handle_client_first("SCRAM-SHA-256", client.client_first());
    const auto client_final = client.handle_server_first(*server_first);
    const auto server_final = server.handle_client_final(*client_final);
    if (!server_final || !client.verify_server_final(*server_final)) {
      state.SkipWithError("exchange failed");
      break;
    }
  }
}
BENCHMARK(BM_ScramExchange)->Unit(benchmark::kMillisecond);

// The server side alone: what a flood of client logins costs the proxy per login.
void BM_ScramServerSide(benchmark::State& state) {
  const ScramVerifier verifier = *parse_scram_verifier(make_scram_verifier("pencil", 4096));
  ScramClient client("pencil");
  ScramServer first_server(verifier);
  const std::string client_first = client.client_first();
  // The client's final message depends on the server nonce, so fix it for the whole run.
  first_server.set_nonce_for_test("fixed-server-nonce");
  const std::string client_final =
      *client.handle_server_first(*first_server.handle_client_first("SCRAM-SHA-256", client_first));
  for (auto _ : state) {
    ScramServer server(verifier);
    server.set_nonce_for_test("fixed-server-nonce");
    benchmark::DoNotOptimize(server.handle_client_first("SCRAM-SHA-256", client_first));
    const auto server_final = server.handle_client_final(client_final);
    if (!server_final) {
      state.SkipWithError("proof rejected");
      break;
    }
  }
}
BENCHMARK(BM_ScramServerSide)->Unit(benchmark::kMicrosecond);

}  // namespace
