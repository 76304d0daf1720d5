// What a client in transaction pooling has set up that must follow it from server to server:
// its startup parameters and its session-level settings, built-in and custom. Sans-I/O: the
// session runs the SQL this class writes and hands back the rows the server returned.
//
// Fingerprints: a server carries the fingerprint of the settings last applied to it. 0 means
// the server's defaults; a client's fingerprint is 0 or odd; kTaintedSettings (2) marks a server
// that ran code pglane cannot see through (DO, CALL, functions), which no client matches, so it
// is RESET before anyone uses it again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/session_effects.h"

namespace pglane::txn {

using SettingList = std::vector<std::pair<std::string, std::string>>;

inline constexpr uint64_t kTaintedSettings = 2;

// An E'...' literal: quotes and backslashes doubled, so it reads the same whatever the session's
// standard_conforming_strings (values come from clients).
std::string quote_literal(std::string_view v);

// "SELECT pg_catalog.set_config(name, value, false), ..." for a non-empty list.
std::string set_config_sql(const SettingList& list);

class ClientSettings {
 public:
  // The client's startup parameters that become settings (names already validated). Custom
  // ones (options=-c app.tenant=t1) are read back by name like those set later.
  void set_startup(SettingList startup);
  const SettingList& startup() const { return startup_; }

  // What one statement may have done. `taint_unknown_functions`:
  // pool.reset_after_unknown_functions; `scs_off`: standard_conforming_strings is off, so the scan
  // cannot be trusted.
  void note(const routing::SessionEffects& fx, bool taint_unknown_functions, bool scs_off);
  bool dirty() const { return dirty_; }
  bool tainted() const { return tainted_; }

  // The query that lists the client's settings on its server: built-in ones from pg_settings
  // (source 'session'), custom ones by name with current_setting(name, true), since PostgreSQL
  // hides placeholders from pg_settings and SHOW ALL.
  std::string read_query() const;
  // Takes read_query()'s rows (name, value). Returns the startup settings the client's RESETs
  // removed: on a direct connection RESET returns them to their startup values, so the caller
  // puts them back (set_config_sql) and reads again.
  SettingList absorb(const std::vector<std::vector<std::string>>& rows);

  const SettingList& values() const { return values_; }
  uint64_t fingerprint() const { return hash_; }
  // The fingerprint a server carries once this client leaves it; clears the taint.
  uint64_t release_fingerprint();
  // SQL that brings a server carrying `server_fingerprint` to this client's settings, or ""
  // when it already has them.
  std::string replay_sql(uint64_t server_fingerprint) const;

  // Settings routing cares about, as last read (defaults: off).
  bool default_read_only() const { return default_read_only_; }
  bool default_serializable() const { return default_serializable_; }
  // standard_conforming_strings as the client set it; nullopt when it did not.
  std::optional<bool> scs_off() const { return scs_off_; }

 private:
  void add_custom(std::string lower_name);

  SettingList startup_;
  SettingList values_;  // session-level settings as last read, by name
  uint64_t hash_ = 0;   // fingerprint of values_
  bool dirty_ = false;  // a statement may have changed values_ since the last read
  // Code ran that may have set what no name of ours covers: the server gets kTaintedSettings.
  bool tainted_ = false;
  std::vector<std::string> custom_names_;  // lower-cased "prefix.name"
  std::vector<std::string> resets_;        // names RESET since the last read (lower-cased)
  bool default_read_only_ = false;
  bool default_serializable_ = false;
  std::optional<bool> scs_off_;
};

}  // namespace pglane::txn
