#include "txn/client_settings.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pglane::txn {

std::string quote_literal(std::string_view v) {
  std::string out = "E'";
  for (char c : v) {
    if (c == '\'' || c == '\\') {
      out += c;
    }
    out += c;
  }
  out += '\'';
  return out;
}

std::string set_config_sql(const SettingList& list) {
  std::string sql;
  for (const auto& [name, value] : list) {
    absl::StrAppend(&sql, sql.empty() ? "SELECT " : ", ", "pg_catalog.set_config(",
                    quote_literal(name), ", ", quote_literal(value), ", false)");
  }
  return sql;
}

void ClientSettings::add_custom(std::string lower_name) {
  if (std::find(custom_names_.begin(), custom_names_.end(), lower_name) == custom_names_.end()) {
    custom_names_.push_back(std::move(lower_name));
  }
}

void ClientSettings::set_startup(SettingList startup) {
  startup_ = std::move(startup);
  for (const auto& [name, value] : startup_) {
    if (name.find('.') != std::string::npos) {
      add_custom(absl::AsciiStrToLower(name));
    }
  }
}

void ClientSettings::note(const routing::SessionEffects& fx, bool taint_unknown_functions,
                          bool scs_off) {
  if (fx.may_change_settings) {
    dirty_ = true;
  }
  for (const auto& name : fx.custom_settings) {
    add_custom(name);
  }
  if (fx.reset_all) {
    resets_.clear();
    for (const auto& [name, value] : startup_) {
      resets_.push_back(absl::AsciiStrToLower(name));
    }
  }
  resets_.insert(resets_.end(), fx.reset_settings.begin(), fx.reset_settings.end());
  // Code or text pglane cannot see through may have set anything. With
  // standard_conforming_strings off the lexer reads literals as PostgreSQL does not, so nothing
  // it found can be trusted.
  if (fx.opaque_code || scs_off || (fx.calls_unknown_functions && taint_unknown_functions)) {
    tainted_ = true;
    dirty_ = true;
  }
}

std::string ClientSettings::read_query() const {
  std::string sql =
      "SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'session' "
      "AND name NOT IN ('role', 'session_authorization')";
  if (!custom_names_.empty()) {
    std::string names;
    for (const auto& n : custom_names_) {
      absl::StrAppend(&names, names.empty() ? "" : ",", quote_literal(n));
    }
    // A custom name the server has never seen (NULL) is not a setting of the client's.
    absl::StrAppend(&sql,
                    " UNION ALL SELECT n, s FROM (SELECT n, pg_catalog.current_setting(n, true) "
                    "AS s FROM pg_catalog.unnest(ARRAY[",
                    names,
                    "]::pg_catalog.text[]) AS n) AS c WHERE s IS NOT NULL AND NOT EXISTS "
                    "(SELECT 1 FROM pg_catalog.pg_settings p WHERE p.name = c.n)");
  }
  absl::StrAppend(&sql, " ORDER BY 1");
  return sql;
}

SettingList ClientSettings::absorb(const std::vector<std::vector<std::string>>& rows) {
  values_.clear();
  for (const auto& row : rows) {
    if (row.size() == 2) {
      values_.emplace_back(row[0], row[1]);
    }
  }
  hash_ = values_.empty() ? 0 : (absl::HashOf(values_) | 1);
  dirty_ = false;
  default_read_only_ = false;
  default_serializable_ = false;
  scs_off_.reset();
  for (const auto& [name, value] : values_) {
    if (name == "standard_conforming_strings") {
      scs_off_ = value == "off";
    } else if (name == "default_transaction_read_only") {
      default_read_only_ = value == "on";
    } else if (name == "default_transaction_isolation") {
      default_serializable_ = value == "serializable";
    }
  }
  // Startup settings applied with SET are gone after RESET (built-in ones leave pg_settings'
  // 'session' rows; a custom one reads back as '', since placeholders have no source to tell a
  // RESET from SET x = ''), where a direct connection returns to the startup value.
  SettingList missing;
  for (const auto& [name, value] : startup_) {
    const std::string lname = absl::AsciiStrToLower(name);
    const bool reset = std::find(resets_.begin(), resets_.end(), lname) != resets_.end();
    const bool custom = name.find('.') != std::string::npos;
    bool present = false;
    for (const auto& [n, v] : values_) {
      present |= absl::AsciiStrToLower(n) == lname && !(custom && reset && v.empty());
    }
    if (!present) {
      missing.emplace_back(name, value);
    }
  }
  resets_.clear();
  return missing;
}

uint64_t ClientSettings::release_fingerprint() {
  const uint64_t f = tainted_ ? kTaintedSettings : hash_;
  tainted_ = false;
  return f;
}

std::string ClientSettings::replay_sql(uint64_t server_fingerprint) const {
  if (server_fingerprint == hash_) {
    return {};
  }
  std::string sql = "RESET ALL";
  if (!values_.empty()) {
    absl::StrAppend(&sql, ";", set_config_sql(values_));
  }
  return sql;
}

}  // namespace pglane::txn
