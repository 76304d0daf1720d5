// Loads and validates conf/proxy.toml and the users file. Errors name the file, line and key.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "conf/config.h"

namespace pglane::conf {

// Parses and validates `path`. The error message has one line per problem, "FILE:LINE: KEY: what
// is wrong": unknown keys first ("did you mean ...?" when one is close), then the rest in file
// order.
absl::StatusOr<ConfigPtr> load_config(const std::string& path);
// Same, from text (for tests); `path` is used in messages and to resolve relative paths.
absl::StatusOr<ConfigPtr> parse_config(const std::string& text, const std::string& path);

// One user allowed to log in to pglane.
struct UserEntry {
  std::string name;
  AuthMethod method = AuthMethod::kScramSha256;
  std::string secret;  // SCRAM verifier, "md5<hex>" for md5, empty for trust
};
using UserMap = std::map<std::string, UserEntry>;

// The users file: one user per line, "NAME METHOD [SECRET]", '#' starts a comment, METHOD is
// scram-sha-256 | md5 | trust. Errors name the file and line.
absl::StatusOr<UserMap> load_users(const std::string& path);
absl::StatusOr<UserMap> parse_users(const std::string& text, const std::string& path);

}  // namespace pglane::conf
