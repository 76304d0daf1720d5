#include "proxy/log.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>

namespace pglane::proxy {

namespace {

// The message as a quoted string's contents: backslash, quote and control characters escaped
// (JSON: \u00XX), so one event stays one line whatever a server or client sent.
std::string escape(std::string_view text, bool json) {
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (json && u >= 0x80) {
      // JSON must be valid UTF-8: a well-formed sequence passes, anything else becomes U+FFFD.
      const size_t n = u >= 0xf0 && u < 0xf5 ? 4 : u >= 0xe0 ? 3 : u >= 0xc2 && u < 0xe0 ? 2 : 0;
      bool ok = n > 0 && i + n <= text.size();
      for (size_t k = 1; ok && k < n; ++k) {
        ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
      }
      if (ok) {
        out.append(text.substr(i, n));
        i += n - 1;
      } else {
        out += "\\ufffd";
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += json ? absl::StrFormat("\\u%04x", u) : absl::StrFormat("\\x%02x", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Text lines stay readable (quotes as they are) but never span two lines.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return out;
}

}  // namespace

void log_line(conf::LogLevel level, std::string_view text) {
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  static constexpr const char* kLower[] = {"debug", "info", "warning", "error"};
  const int l = static_cast<int>(level);
  std::string line;
  switch (g_log_format.load(std::memory_order_relaxed)) {
    case conf::LogFormat::kText:
      line = absl::StrFormat("%s.%03dZ %s %s\n", stamp, static_cast<int>(ms.count()), kNames[l],
                             one_line(text));
      break;
    case conf::LogFormat::kLogfmt:
      line = absl::StrFormat("ts=%s.%03dZ level=%s msg=\"%s\"\n", stamp,
                             static_cast<int>(ms.count()), kLower[l], escape(text, false));
      break;
    case conf::LogFormat::kJson:
      line = absl::StrFormat("{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n", stamp,
                             static_cast<int>(ms.count()), kLower[l], escape(text, true));
      break;
  }
  // One write per line keeps lines from different workers whole.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace pglane::proxy
