// Fuzzes the users-file parser (conf/loader.h, parse_users) with arbitrary text.
//
// Besides the sanitizers, it checks that an error is one line naming the file and a line that
// exists, and that every entry the parser accepts can be used: a scram-sha-256 SECRET the loader
// lets through must be a verifier the SCRAM code (protocol/scram.h, parse_scram_verifier) can
// read, or that user could never log in while the file looked fine; an md5 SECRET is "md5" and
// 32 lower-case hex digits; trust has no SECRET.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "conf/loader.h"
#include "protocol/scram.h"
#include "tests/fuzz/fuzz_check.h"

using namespace pglane::conf;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = "users.txt";
  const absl::StatusOr<UserMap> users = parse_users(text, path);

  if (!users.ok()) {
    const std::string message(users.status().message());
    FUZZ_CHECK(message.starts_with(path + ":"));
    const std::string_view rest = std::string_view(message).substr(path.size() + 1);
    long line = 0;
    std::size_t digits = 0;
    for (; digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9'; ++digits) {
      line = line * 10 + (rest[digits] - '0');
      FUZZ_CHECK(line < 100000000);
    }
    FUZZ_CHECK(digits > 0 && rest.substr(digits).starts_with(": user "));
    FUZZ_CHECK(line >= 1 && line <= 1 + std::count(text.begin(), text.end(), '\n'));
    return 0;
  }

  for (const auto& [name, entry] : *users) {
    FUZZ_CHECK(!name.empty() && name == entry.name && name[0] != '#');
    switch (entry.method) {
      case AuthMethod::kScramSha256:
        if (!pglane::protocol::parse_scram_verifier(entry.secret)) {
          std::fprintf(stderr, "users file accepts a SCRAM secret the SCRAM code rejects: %s\n",
                       entry.secret.c_str());
          FUZZ_CHECK(!"accepted SCRAM secret is unusable");
        }
        break;
      case AuthMethod::kMd5:
        FUZZ_CHECK(entry.secret.size() == 35 && entry.secret.starts_with("md5"));
        FUZZ_CHECK(std::all_of(entry.secret.begin() + 3, entry.secret.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        }));
        break;
      case AuthMethod::kTrust:
        FUZZ_CHECK(entry.secret.empty());
        break;
    }
  }
  return 0;
}
