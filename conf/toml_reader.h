// Reading conf/proxy.toml's tables (toml++): typed getters that check each value and collect
// every problem as "FILE:LINE: KEY: what is wrong", so that the loader (conf/loader.cc) reads like
// the file it loads.
#pragma once

#include <climits>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "conf/config.h"

namespace pglane::conf {

namespace fs = std::filesystem;

// Debian's abseil is built with its own string_view type; toml++ speaks std::string_view.
inline std::string_view to_std(absl::string_view s) {
  return {s.data(), s.size()};
}
inline absl::string_view to_absl(std::string_view s) {
  return {s.data(), s.size()};
}

// Checks that `path` is a regular file this process can open for reading. Returns an empty
// string if so, or what is wrong.
std::string check_readable(const std::string& path);
// "a string", "an integer", ...: for "expected X, got Y" messages.
absl::string_view type_name(toml::node_type type);
// The 1-based line a node starts on.
uint32_t line_of(const toml::source_region& source);
// The key of `allowed` closest to the unknown `key` (edit distance at most a third of its length,
// at least 2; or one a prefix of the other), or empty when none is close.
absl::string_view nearest_key(absl::string_view key,
                              std::initializer_list<absl::string_view> allowed);
// Parses "host:port" or "[v6addr]:port". On failure returns nullopt and sets `why`.
std::optional<Endpoint> parse_endpoint(absl::string_view text, std::string* why);

// A TOML table together with its dotted path in the document ("backend.tls", "regions[1]").
struct Table {
  const toml::table& node;
  std::string path;

  std::string key(absl::string_view name) const {
    return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
  }
  uint32_t line() const { return line_of(node.source()); }
};

template <typename E>
using Choices = std::initializer_list<std::pair<absl::string_view, E>>;

// The outcome of reading one key: absent (the default stays), read, or wrong (already reported).
enum class Got { kAbsent, kOk, kBad };

// The typed getters. Each reports what is wrong with the key it reads (and returns kBad); the
// caller decides what a missing key means.
class TomlReader {
 public:
  TomlReader(std::string file, fs::path dir) : file_(std::move(file)), dir_(std::move(dir)) {}

 protected:
  void fail(uint32_t line, absl::string_view key, absl::string_view what, bool unknown = false) {
    std::string message = absl::StrCat(file_, ":", line, ": ", key, ": ", what);
    std::replace(message.begin(), message.end(), '\n', ' ');
    errors_.push_back(Problem{line, unknown, std::move(message)});
  }

  // Reports every key of `t` not in `allowed`, with the nearest allowed key when one is close
  // (a typo); the key it suggests is then not also reported missing.
  void check_keys(const Table& t, std::initializer_list<absl::string_view> allowed) {
    for (auto&& [name, value] : t.node) {
      const absl::string_view key = to_absl(name.str());
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
        continue;
      }
      const absl::string_view near = nearest_key(key, allowed);
      if (!near.empty()) {
        suggested_.push_back(t.key(near));
        fail(line_of(name.source()), t.key(key),
             absl::StrCat("unknown key (did you mean \"", near, "\"?)"), true);
      } else {
        fail(line_of(name.source()), t.key(key),
             absl::StrCat("unknown key (expected one of: ", absl::StrJoin(allowed, ", "), ")"),
             true);
      }
    }
  }

  void missing(const Table& t, absl::string_view name) {
    if (std::find(suggested_.begin(), suggested_.end(), t.key(name)) != suggested_.end()) {
      return;  // misspelt: reported as the unknown key that was probably meant to be it
    }
    fail(t.line(), t.key(name), "missing required key");
  }

  void wrong_type(const Table& t, absl::string_view name, const toml::node& node,
                  absl::string_view expected) {
    fail(line_of(node.source()), t.key(name),
         absl::StrCat("expected ", expected, ", got ", type_name(node.type())));
  }

  // The sub-table `name` of `t`, or nullptr if absent (or not a table, which is reported).
  const toml::table* subtable(const Table& t, absl::string_view name) {
    const toml::node* node = t.node.get(to_std(name));
    if (node == nullptr) {
      return nullptr;
    }
    if (!node->is_table()) {
      wrong_type(t, name, *node, "a table");
      return nullptr;
    }
    return node->as_table();
  }

  Got get_string(const Table& t, absl::string_view name, std::string& out) {
    const toml::node* node = t.node.get(to_std(name));
    if (node == nullptr) {
      return Got::kAbsent;
    }
    if (!node->is_string()) {
      wrong_type(t, name, *node, "a string");
      return Got::kBad;
    }
    out = node->as_string()->get();
    return Got::kOk;
  }

  // A string that must not be empty when present.
  Got get_nonempty_string(const Table& t, absl::string_view name, std::string& out) {
    std::string value;
    Got got = get_string(t, name, value);
    if (got == Got::kOk && value.empty()) {
      fail(line(t, name), t.key(name), "must not be empty");
      return Got::kBad;
    }
    if (got == Got::kOk) {
      out = std::move(value);
    }
    return got;
  }

  Got get_bool(const Table& t, absl::string_view name, bool& out) {
    const toml::node* node = t.node.get(to_std(name));
    if (node == nullptr) {
      return Got::kAbsent;
    }
    if (!node->is_boolean()) {
      wrong_type(t, name, *node, "a boolean");
      return Got::kBad;
    }
    out = node->as_boolean()->get();
    return Got::kOk;
  }

  template <typename T>
  Got get_int(const Table& t, absl::string_view name, int64_t min, int64_t max, T& out) {
    const toml::node* node = t.node.get(to_std(name));
    if (node == nullptr) {
      return Got::kAbsent;
    }
    if (!node->is_integer()) {
      wrong_type(t, name, *node, "an integer");
      return Got::kBad;
    }
    int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
      fail(line_of(node->source()), t.key(name),
           max == INT_MAX ? absl::StrCat("must be at least ", min, ", got ", value)
                          : absl::StrCat("must be between ", min, " and ", max, ", got ", value));
      return Got::kBad;
    }
    out = static_cast<T>(value);
    return Got::kOk;
  }

  template <typename E>
  Got get_enum(const Table& t, absl::string_view name, Choices<E> choices, E& out) {
    std::string value;
    Got got = get_string(t, name, value);
    if (got != Got::kOk) {
      return got;
    }
    for (const auto& [text, e] : choices) {
      if (text == value) {
        out = e;
        return Got::kOk;
      }
    }
    std::vector<std::string> quoted;
    for (const auto& choice : choices) {
      quoted.push_back(absl::StrCat("\"", choice.first, "\""));
    }
    fail(line(t, name), t.key(name),
         absl::StrCat("must be one of ", absl::StrJoin(quoted, ", "), "; got \"", value, "\""));
    return Got::kBad;
  }

  // A file path; relative paths resolve against the config file's directory.
  Got get_path(const Table& t, absl::string_view name, std::string& out) {
    std::string value;
    Got got = get_nonempty_string(t, name, value);
    if (got == Got::kOk) {
      fs::path p(value);
      fs::path resolved = (p.is_absolute() ? p : dir_ / p).lexically_normal();
      if (!resolved.has_filename() && resolved.has_relative_path()) {
        resolved = resolved.parent_path();  // "dir/" -> "dir"
      }
      out = resolved.string();
    }
    return got;
  }

  // Reports `key` (line of `name` in `t`) unless the already-resolved `path` is readable.
  bool require_readable(const Table& t, absl::string_view name, const std::string& path) {
    std::string problem = check_readable(path);
    if (!problem.empty()) {
      fail(line(t, name), t.key(name), problem);
      return false;
    }
    return true;
  }

  // The line of key `name` in `t`, or of the table itself when the key is absent.
  uint32_t line(const Table& t, absl::string_view name) const {
    const toml::node* node = t.node.get(to_std(name));
    return node == nullptr ? t.line() : line_of(node->source());
  }

  // An array of non-empty strings; each bad element is reported on its own line.
  Got get_string_list(const Table& t, absl::string_view name, absl::string_view what,
                      std::vector<std::string>& out) {
    const toml::node* list = t.node.get(to_std(name));
    if (list == nullptr) {
      return Got::kAbsent;
    }
    if (!list->is_array()) {
      wrong_type(t, name, *list, absl::StrCat("an array of ", what, "s"));
      return Got::kBad;
    }
    out.clear();
    Got got = Got::kOk;
    const toml::array& items = *list->as_array();
    for (size_t k = 0; k < items.size(); ++k) {
      if (!items[k].is_string() || items[k].as_string()->get().empty()) {
        fail(line_of(items[k].source()), absl::StrCat(t.key(name), "[", k, "]"),
             absl::StrCat("expected a non-empty ", what));
        got = Got::kBad;
        continue;
      }
      out.push_back(items[k].as_string()->get());
    }
    return got;
  }

  // An endpoint-valued string key; reports and returns kBad if it does not parse.
  Got get_endpoint(const Table& t, absl::string_view name, Endpoint& out) {
    std::string text;
    Got got = get_string(t, name, text);
    if (got != Got::kOk) {
      return got;
    }
    std::string why;
    std::optional<Endpoint> endpoint = parse_endpoint(text, &why);
    if (!endpoint) {
      fail(line(t, name), t.key(name), why);
      return Got::kBad;
    }
    out = std::move(*endpoint);
    return Got::kOk;
  }

  std::string file_;  // as given by the caller; starts every message
  fs::path dir_;      // relative paths in the file resolve against this
  struct Problem {
    uint32_t line;
    bool unknown_key;  // reported before the rest: a typo explains errors that follow from it
    std::string message;
  };
  std::vector<Problem> errors_;
  std::vector<std::string> suggested_;  // full keys offered as "did you mean"
};

}  // namespace pglane::conf
