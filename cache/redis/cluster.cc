#include "cache/redis/cluster.h"

#include <charconv>

namespace pglane::cache::redis {

namespace {

uint16_t crc16(std::string_view s) {
  uint16_t crc = 0;
  for (unsigned char c : s) {
    crc ^= static_cast<uint16_t>(c) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

}  // namespace

int key_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) % kClusterSlots;
}

std::optional<Redirect> parse_redirect(const Reply& r) {
  if (!r.is_error()) {
    return std::nullopt;
  }
  std::string_view s = r.str;
  Redirect d;
  if (s.rfind("MOVED ", 0) == 0) {
    s.remove_prefix(6);
  } else if (s.rfind("ASK ", 0) == 0) {
    d.ask = true;
    s.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t sp = s.find(' ');
  if (sp == std::string_view::npos) {
    return std::nullopt;
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + sp, d.slot);
  if (ec != std::errc() || end != s.data() + sp || d.slot < 0 || d.slot >= kClusterSlots) {
    return std::nullopt;
  }
  const std::string_view addr = s.substr(sp + 1);
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  unsigned port = 0;
  auto [pend, pec] = std::from_chars(addr.data() + colon + 1, addr.data() + addr.size(), port);
  if (pec != std::errc() || pend != addr.data() + addr.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  d.host = std::string(addr.substr(0, colon));
  if (d.host.size() > 2 && d.host.front() == '[' && d.host.back() == ']') {
    d.host = d.host.substr(1, d.host.size() - 2);  // [v6]
  }
  d.port = static_cast<uint16_t>(port);
  return d;
}

}  // namespace pglane::cache::redis
