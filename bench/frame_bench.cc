// Frame decoding throughput over a result set as a server sends it: one RowDescription, many
// DataRows, CommandComplete, ReadyForQuery.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "protocol/frame.h"
#include "protocol/messages.h"

namespace {

using namespace pglane::protocol;

void put_i16(std::string& out, int v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_i32(std::string& out, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  out.push_back(static_cast<char>(u >> 24));
  out.push_back(static_cast<char>(u >> 16));
  out.push_back(static_cast<char>(u >> 8));
  out.push_back(static_cast<char>(u));
}

void typed(std::string& out, char type, const std::string& body) {
  out.push_back(type);
  put_i32(out, static_cast<std::int32_t>(body.size() + 4));
  out += body;
}

// 'T' with `cols` text columns, then `rows` 'D' rows of short values, 'C' and 'Z'.
std::string result_set(int cols, int rows) {
  std::string out;
  std::string body;
  put_i16(body, cols);
  for (int c = 0; c < cols; ++c) {
    body += "column_" + std::to_string(c);
    body.push_back('\0');
    put_i32(body, 16384);  // table OID
    put_i16(body, c + 1);  // attribute number
    put_i32(body, 25);     // text
    put_i16(body, -1);
    put_i32(body, -1);
    put_i16(body, 0);
  }
  typed(out, 'T', body);
  for (int r = 0; r < rows; ++r) {
    body.clear();
    put_i16(body, cols);
    for (int c = 0; c < cols; ++c) {
      const std::string value = "value-" + std::to_string(r * cols + c);
      put_i32(body, static_cast<std::int32_t>(value.size()));
      body += value;
    }
    typed(out, 'D', body);
  }
  typed(out, 'C', std::string("SELECT ") + std::to_string(rows) + '\0');
  encode_ready_for_query(out, 'I');
  return out;
}

void BM_DecodeFrame(benchmark::State& state) {
  const std::string buf = result_set(static_cast<int>(state.range(0)), 1000);
  std::size_t frames = 0;
  for (auto _ : state) {
    std::string_view rest = buf;
    while (true) {
      const auto d = decode_frame(rest);
      if (d.status != DecodeStatus::kMessage) {
        break;
      }
      benchmark::DoNotOptimize(d.frame.body.data());
      rest.remove_prefix(d.frame.size);
      ++frames;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
}
BENCHMARK(BM_DecodeFrame)->Arg(1)->Arg(4)->Arg(16);

void BM_DecodeHeader(benchmark::State& state) {
  const std::string buf = result_set(4, 1000);
  std::size_t frames = 0;
  for (auto _ : state) {
    std::string_view rest = buf;
    while (!rest.empty()) {
      const auto d = decode_header(rest);
      if (d.status != DecodeStatus::kMessage) {
        break;
      }
      benchmark::DoNotOptimize(d.frame.type);
      rest.remove_prefix(d.frame.size);
      ++frames;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
}
BENCHMARK(BM_DecodeHeader);

}  // namespace
