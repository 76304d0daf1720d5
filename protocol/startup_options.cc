#include "protocol/startup_options.h"

namespace pglane::protocol {

bool is_safe_guc_name(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool parse_options(std::string_view opts, std::vector<std::pair<std::string, std::string>>& out) {
  std::vector<std::string> words;
  std::string cur;
  bool have = false;
  for (size_t i = 0; i < opts.size(); ++i) {
    char c = opts[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (have) {
        words.push_back(std::move(cur));
        cur.clear();
        have = false;
      }
      continue;
    }
    if (c == '\\' && i + 1 < opts.size()) {
      c = opts[++i];
    }
    cur += c;
    have = true;
  }
  if (have) {
    words.push_back(std::move(cur));
  }
  for (size_t i = 0; i < words.size(); ++i) {
    std::string_view setting;
    if (words[i] == "-c" && i + 1 < words.size()) {
      setting = words[++i];
    } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
      setting = std::string_view(words[i]).substr(2);
    } else if (words[i].rfind("--", 0) == 0) {
      setting = std::string_view(words[i]).substr(2);
    } else {
      return false;  // other postgres command-line switches are not supported
    }
    auto eq = setting.find('=');
    if (eq == std::string_view::npos) {
      return false;
    }
    std::string name(setting.substr(0, eq));
    for (auto& ch : name) {
      if (ch == '-') {
        ch = '_';
      }
    }
    out.emplace_back(std::move(name), std::string(setting.substr(eq + 1)));
  }
  return true;
}

}  // namespace pglane::protocol
