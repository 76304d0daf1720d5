// The users file: one line per user, NAME METHOD [SECRET], with the SECRET in PostgreSQL's own
// stored form (pg_authid.rolpassword), so it can be copied from the server.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "conf/files.h"
#include "conf/loader.h"

namespace pglane::conf {

namespace {

// "<iter>:<salt>$<storedkey>:<serverkey>" after the "SCRAM-SHA-256$" prefix, as PostgreSQL
// stores it in pg_authid.rolpassword (RFC 5803 shape). Returns what is wrong, or "".
std::string check_scram_shape(absl::string_view rest) {
  std::vector<absl::string_view> halves = absl::StrSplit(rest, '$');
  if (halves.size() != 2) {
    return "expected SCRAM-SHA-256$<iter>:<salt>$<storedkey>:<serverkey>";
  }
  std::vector<absl::string_view> iter_salt = absl::StrSplit(halves[0], ':');
  std::vector<absl::string_view> keys = absl::StrSplit(halves[1], ':');
  if (iter_salt.size() != 2 || keys.size() != 2) {
    return "expected SCRAM-SHA-256$<iter>:<salt>$<storedkey>:<serverkey>";
  }
  int iterations = 0;
  bool digits = !iter_salt[0].empty() && std::all_of(iter_salt[0].begin(), iter_salt[0].end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !absl::SimpleAtoi(iter_salt[0], &iterations) || iterations < 1) {
    return "the iteration count must be a positive integer";
  }
  // Strict RFC 4648 with padding, as protocol::base64_decode reads it at login: a verifier
  // accepted here must be usable there (absl alone also takes unpadded text).
  auto base64 = [](absl::string_view s, std::string* out) {
    const size_t body = s.find('=');
    const size_t pad = body == absl::string_view::npos ? 0 : s.size() - body;
    bool charset = !s.empty() && s.size() % 4 == 0 && pad <= 2 &&
                   std::all_of(s.begin(), s.end() - pad,
                               [](char c) {
                                 return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                                        c == '+' || c == '/';
                               }) &&
                   std::all_of(s.end() - pad, s.end(), [](char c) { return c == '='; });
    return charset && absl::Base64Unescape(s, out) && !out->empty();
  };
  std::string decoded;
  if (!base64(iter_salt[1], &decoded)) {
    return "the salt is not base64";
  }
  // SHA-256 digests: 32 bytes each.
  if (!base64(keys[0], &decoded) || decoded.size() != 32) {
    return "the stored key is not 32 bytes of base64";
  }
  if (!base64(keys[1], &decoded) || decoded.size() != 32) {
    return "the server key is not 32 bytes of base64";
  }
  return "";
}

}  // namespace

absl::StatusOr<UserMap> parse_users(const std::string& text, const std::string& path) {
  UserMap users;
  std::map<std::string, int, std::less<>> first_seen;  // name -> line
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    std::vector<absl::string_view> fields;
    for (absl::string_view field :
         absl::StrSplit(line, absl::ByAnyChar(" \t\r\f\v"), absl::SkipEmpty())) {
      if (field.front() == '#') {
        break;  // a comment runs to the end of the line
      }
      fields.push_back(field);
    }
    if (fields.empty()) {
      continue;
    }
    absl::string_view name = fields[0];
    auto fail = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": user ", name, ": ", what));
    };
    if (auto it = first_seen.find(name); it != first_seen.end()) {
      return fail(absl::StrCat("duplicate user (first defined on line ", it->second, ")"));
    }
    if (fields.size() < 2) {
      return fail("missing METHOD (scram-sha-256, md5 or trust)");
    }
    if (fields.size() > 3) {
      return fail("unexpected text after SECRET");
    }
    UserEntry entry;
    entry.name = std::string(name);
    absl::string_view method = fields[1];
    absl::string_view secret = fields.size() == 3 ? fields[2] : absl::string_view();
    if (method == "scram-sha-256") {
      constexpr absl::string_view kPrefix = "SCRAM-SHA-256$";
      if (secret.empty()) {
        return fail("scram-sha-256 needs a SECRET (SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>)");
      }
      if (!absl::StartsWith(secret, kPrefix)) {
        return fail("scram-sha-256 SECRET must start with \"SCRAM-SHA-256$\"");
      }
      if (std::string why = check_scram_shape(secret.substr(kPrefix.size())); !why.empty()) {
        return fail(absl::StrCat("malformed SCRAM secret: ", why));
      }
      entry.method = AuthMethod::kScramSha256;
    } else if (method == "md5") {
      bool shaped = secret.size() == 35 && absl::StartsWith(secret, "md5") &&
                    std::all_of(secret.begin() + 3, secret.end(),
                                [](char c) { return absl::ascii_isxdigit(c); });
      if (!shaped) {
        return fail("md5 SECRET must be \"md5\" followed by 32 hex digits");
      }
      entry.method = AuthMethod::kMd5;
    } else if (method == "trust") {
      if (!secret.empty()) {
        return fail("trust takes no SECRET");
      }
      entry.method = AuthMethod::kTrust;
    } else {
      return fail(
          absl::StrCat("unknown METHOD \"", method, "\" (expected scram-sha-256, md5 or trust)"));
    }
    // PostgreSQL writes md5 digests in lower case; compare against that form.
    entry.secret = method == "md5" ? absl::AsciiStrToLower(secret) : std::string(secret);
    first_seen.emplace(std::string(name), line_number);
    users.emplace(entry.name, std::move(entry));
  }
  return users;
}

absl::StatusOr<UserMap> load_users(const std::string& path) {
  std::string why;
  std::optional<std::string> text = read_file(path, &why);
  if (!text) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", why));
  }
  return parse_users(*text, path);
}

}  // namespace pglane::conf
