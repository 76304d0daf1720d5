#include "conf/toml_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace pglane::conf {

namespace {

size_t edit_distance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

absl::string_view nearest_key(absl::string_view key,
                              std::initializer_list<absl::string_view> allowed) {
  absl::string_view best;
  size_t best_distance = SIZE_MAX;
  for (absl::string_view candidate : allowed) {
    const size_t shorter = std::min(key.size(), candidate.size());
    const size_t d = edit_distance(key, candidate);
    const bool prefix =
        shorter >= 4 && (absl::StartsWith(key, candidate) || absl::StartsWith(candidate, key));
    if ((d <= std::max<size_t>(2, key.size() / 3) || prefix) && d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

// Checks that `path` is a regular file this process can open for reading. Returns an empty
// string if so, or what is wrong.
std::string check_readable(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) {
    return absl::StrCat("file \"", path, "\" does not exist");
  }
  if (fs::is_directory(st)) {
    return absl::StrCat("\"", path, "\" is a directory, not a file");
  }
  if (!fs::is_regular_file(st)) {
    return absl::StrCat("\"", path, "\" is not a regular file");
  }
  // O_NONBLOCK: never hang on a FIFO swapped in for the file after the check above.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return absl::StrCat("cannot read \"", path, "\": ", std::strerror(errno));
  }
  ::close(fd);
  return "";
}

absl::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

uint32_t line_of(const toml::source_region& source) {
  return source.begin.line == 0 ? 1 : source.begin.line;
}

// Parses "host:port" or "[v6addr]:port". On failure returns nullopt and sets `why`.
std::optional<Endpoint> parse_endpoint(absl::string_view text, std::string* why) {
  constexpr absl::string_view kShape = "expected \"host:port\" (or \"[v6addr]:port\")";
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *why = absl::StrCat(kShape, ", got \"", text, "\"");
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      *why = absl::StrCat(kShape, ", got \"", text, "\" (the port is required)");
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      *why = absl::StrCat("IPv6 addresses need brackets, e.g. \"[::1]:5432\"; got \"", text, "\"");
      return std::nullopt;
    }
  }
  if (host.empty()) {
    *why = absl::StrCat("empty host in \"", text, "\"");
    return std::nullopt;
  }
  for (char c : host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']' || c == '/') {
      *why = absl::StrCat("invalid host in \"", text, "\"");
      return std::nullopt;
    }
  }
  uint32_t port_number = 0;
  bool digits = !port.empty() && port.size() <= 5 &&
                std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !absl::SimpleAtoi(port, &port_number) || port_number < 1 || port_number > 65535) {
    *why = absl::StrCat("port must be between 1 and 65535 in \"", text, "\"");
    return std::nullopt;
  }
  Endpoint endpoint;
  endpoint.host = std::string(host);
  endpoint.port = static_cast<uint16_t>(port_number);
  return endpoint;
}

}  // namespace pglane::conf
