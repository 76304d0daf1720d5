// Fuzzes the TOML config loader (conf/loader.h, parse_config) with arbitrary text for
// proxy.toml. The config names files (users_file, TLS keys, password files) that must exist, so
// the target first lays out a scratch directory with every file the seed corpus names, and loads
// each input as <scratch>/proxy.toml: relative paths in the corpus resolve there.
//
// Besides the sanitizers, it checks the loader's contract: an error is one line, "FILE:LINE:
// KEY: what is wrong", with a LINE that exists in the text; a loaded config has at least one
// region, unique region names, a home region that exists, ports in range, and the files that its
// settings require.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>

#include "conf/loader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace fs = std::filesystem;
using namespace pglane::conf;

std::string& scratch_dir() {
  static std::string dir;
  return dir;
}

void write(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

void remove_scratch() {
  std::error_code ec;
  fs::remove_all(scratch_dir(), ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string tmpl = (fs::temp_directory_path() / "pglane-config-fuzz-XXXXXX").string();
  FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
  scratch_dir() = tmpl;
  const fs::path dir(tmpl);
  // The loader only checks that these exist and can be read; it never parses them.
  write(dir / "users.txt", "alice trust\n");
  write(dir / "backend_password", "secret\n");
  write(dir / "empty_password", "\n");
  for (const char* name : {"server.crt", "server.key", "ca.crt", "health.crt", "health.key"}) {
    write(dir / "tls" / name, "-----BEGIN PLACEHOLDER-----\n");
  }
  fs::create_directories(dir / "a_directory");
  std::atexit(remove_scratch);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = scratch_dir() + "/proxy.toml";
  const absl::StatusOr<ConfigPtr> loaded = parse_config(text, path);

  if (!loaded.ok()) {
    // One problem per line, each "FILE:LINE: ..." with LINE one of the text's lines (an empty
    // text has line 1).
    const std::string message(loaded.status().message());
    FUZZ_CHECK(!message.empty() && message.back() != '\n');
    const long lines = 1 + std::count(text.begin(), text.end(), '\n');
    std::string_view all(message);
    while (!all.empty()) {
      const std::size_t end = all.find('\n');
      const std::string_view one = all.substr(0, end);
      all = end == std::string_view::npos ? std::string_view() : all.substr(end + 1);
      FUZZ_CHECK(one.starts_with(path + ":"));
      const std::string_view rest = one.substr(path.size() + 1);
      const std::size_t colon = rest.find(':');
      FUZZ_CHECK(colon != std::string_view::npos && colon > 0);
      long line = 0;
      for (char c : rest.substr(0, colon)) {
        FUZZ_CHECK(c >= '0' && c <= '9');
        line = line * 10 + (c - '0');
        FUZZ_CHECK(line < 100000000);
      }
      FUZZ_CHECK(line >= 1 && line <= lines);
      FUZZ_CHECK(rest.substr(colon).starts_with(": "));
    }
    return 0;
  }

  const Config& c = **loaded;
  FUZZ_CHECK(!c.regions.empty());
  std::set<std::string> names;
  for (const Region& r : c.regions) {
    FUZZ_CHECK(!r.name.empty() && names.insert(r.name).second);
    if (r.source == TopologySource::kStatic) {
      FUZZ_CHECK(!r.writer.host.empty() && r.writer.port >= 1);
      FUZZ_CHECK(r.instances.empty() && r.instance_host_pattern.empty());
    } else {
      // aurora: somewhere to read the topology, and a way to address the instances it names.
      FUZZ_CHECK(!r.writer.host.empty() || !r.instances.empty());
      FUZZ_CHECK(!r.instance_host_pattern.empty() || !r.instances.empty());
      FUZZ_CHECK(r.readers.empty());
    }
    for (const Endpoint& e : r.readers) {
      FUZZ_CHECK(!e.host.empty() && e.port >= 1);
    }
  }
  FUZZ_CHECK(c.proxy.region.empty() || names.contains(c.proxy.region));
  FUZZ_CHECK(c.home_region().name == (c.proxy.region.empty() ? c.regions[0].name : c.proxy.region));
  FUZZ_CHECK(c.proxy.listen_port >= 1 && !c.proxy.listen_addr.empty());
  FUZZ_CHECK(c.proxy.max_message_size >= 1024 && c.proxy.max_message_size <= (1u << 30));
  FUZZ_CHECK(!c.proxy.users_file.empty() && fs::path(c.proxy.users_file).is_absolute());
  if (c.tls.mode != ClientTlsMode::kDisable) {
    FUZZ_CHECK(!c.tls.cert_file.empty() && !c.tls.key_file.empty());
  }
  if (c.backend.tls.mode == ServerTlsMode::kVerifyCa ||
      c.backend.tls.mode == ServerTlsMode::kVerifyFull) {
    FUZZ_CHECK(!c.backend.tls.ca_file.empty());
  }
  FUZZ_CHECK(c.health.cert_file.empty() == c.health.key_file.empty());
  if (c.analytics.enabled) {
    FUZZ_CHECK(!c.analytics.endpoint.host.empty() && c.analytics.endpoint.port >= 1);
  }
  FUZZ_CHECK(fs::path(c.path).is_absolute());
  return 0;
}
