#include "proxy/log.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>

namespace pglane::proxy {

void log_line(conf::LogLevel level, std::string_view text) {
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line = absl::StrFormat("%s.%03dZ %s %s\n", stamp, static_cast<int>(ms.count()),
                                     kNames[static_cast<int>(level)], text);
  // One write per line keeps lines from different workers whole.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace pglane::proxy
