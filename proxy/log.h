// Leveled logging to stderr (journald under systemd), one line per event in the configured
// format. Thread-safe: each line is formatted first and written with one write(2).
#pragma once

#include <atomic>
#include <string_view>

#include "absl/strings/str_format.h"
#include "conf/config.h"

namespace pglane::proxy {

inline std::atomic<conf::LogLevel> g_log_level{conf::LogLevel::kInfo};
// "text": "2026-12-02T17:00:00.123Z INFO message"; "logfmt": ts=... level=info msg="message";
// "json": {"ts":"...","level":"info","msg":"message"}. One line per event either way.
inline std::atomic<conf::LogFormat> g_log_format{conf::LogFormat::kText};

void log_line(conf::LogLevel level, std::string_view text);

template <typename... Args>
void log(conf::LogLevel level, const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  if (level < g_log_level.load(std::memory_order_relaxed)) {
    return;
  }
  log_line(level, absl::StrFormat(fmt, args...));
}

#define PGLANE_LOG_DEBUG(...) ::pglane::proxy::log(::pglane::conf::LogLevel::kDebug, __VA_ARGS__)
#define PGLANE_LOG_INFO(...) ::pglane::proxy::log(::pglane::conf::LogLevel::kInfo, __VA_ARGS__)
#define PGLANE_LOG_WARN(...) ::pglane::proxy::log(::pglane::conf::LogLevel::kWarning, __VA_ARGS__)
#define PGLANE_LOG_ERROR(...) ::pglane::proxy::log(::pglane::conf::LogLevel::kError, __VA_ARGS__)

}  // namespace pglane::proxy
