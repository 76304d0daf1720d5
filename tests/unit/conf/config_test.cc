// conf/loader.h: parse_config / load_config against TOML text and scratch files.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conf/loader.h"
#include "tests/unit/conf/test_dir.h"

namespace pglane::conf {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The smallest valid config: a users file and one region.
constexpr char kMinimal[] = R"([proxy]
users_file = "users.txt"

[[regions]]
name = "eu-west"
writer = "db1:5432"
)";

class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() { dir_.write("users.txt", "alice trust\n"); }

  std::string file() const { return dir_.path("proxy.toml"); }

  absl::StatusOr<ConfigPtr> parse(const std::string& text) { return parse_config(text, file()); }

  ConfigPtr ok(const std::string& text) {
    absl::StatusOr<ConfigPtr> config = parse(text);
    EXPECT_TRUE(config.ok()) << config.status();
    return config.ok() ? *config : nullptr;
  }

  // The error message for `text`, which must not load: one line per problem.
  std::string error(const std::string& text) {
    absl::StatusOr<ConfigPtr> config = parse(text);
    EXPECT_FALSE(config.ok());
    if (config.ok()) {
      return "";
    }
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    std::string message(config.status().message());
    EXPECT_FALSE(message.empty());
    EXPECT_NE(message.back(), '\n');
    return message;
  }

  // "FILE:LINE: " for this test's config file.
  std::string at(int line) const { return file() + ":" + std::to_string(line) + ": "; }

  TestDir dir_;
};

TEST_F(ConfigTest, ValidFullConfig) {
  dir_.write("tls/server.crt", "cert");
  dir_.write("tls/server.key", "key");
  dir_.write("tls/ca.crt", "ca");
  dir_.write("secrets/backend", "s3cret\nignored second line\n");
  dir_.write("secrets/report", "r3port\r\n");
  ConfigPtr config = ok(R"(
[proxy]
listen_addr = "0.0.0.0"
listen_port = 7432
workers = 4
region = "us-east"
max_client_conn = 500
max_message_size = 65536
auth_timeout_ms = 2000
client_idle_timeout_ms = 30000
log_level = "debug"
users_file = "users.txt"

[tls]
mode = "require"
cert_file = "tls/server.crt"
key_file = "tls/server.key"
ca_file = "tls/ca.crt"
verify_client = true
min_version = "1.3"

[backend]
user = "pglane_app"
password_file = "secrets/backend"
connect_timeout_ms = 1500

[backend.tls]
mode = "verify-full"
ca_file = "tls/ca.crt"

[backend.users.report]
user = "reporting"
password = "pw"

[pool]
mode = "transaction"
size = 42
queue_timeout_ms = 250
server_idle_timeout_ms = 0

[[regions]]
name = "eu-west"
writer = "writer.eu:5432"
readers = ["r1.eu:5433", "[::1]:5434"]

[[regions]]
name = "us-east"
writer = "[2001:db8::1]:6543"

[analytics]
endpoint = "olap.internal:5439"
user = "analyst"
password_file = "secrets/report"
database = "warehouse"
)");
  ASSERT_NE(config, nullptr);
  const std::string root = dir_.root().string();
  EXPECT_EQ(config->path, file());

  EXPECT_EQ(config->proxy.listen_addr, "0.0.0.0");
  EXPECT_EQ(config->proxy.listen_port, 7432);
  EXPECT_EQ(config->proxy.workers, 4);
  EXPECT_EQ(config->proxy.region, "us-east");
  EXPECT_EQ(config->proxy.max_client_conn, 500);
  EXPECT_EQ(config->proxy.max_message_size, 65536u);
  EXPECT_EQ(config->proxy.auth_timeout_ms, 2000);
  EXPECT_EQ(config->proxy.client_idle_timeout_ms, 30000);
  EXPECT_EQ(config->proxy.log_level, LogLevel::kDebug);
  EXPECT_EQ(config->proxy.users_file, root + "/users.txt");

  EXPECT_EQ(config->tls.mode, ClientTlsMode::kRequire);
  EXPECT_EQ(config->tls.cert_file, root + "/tls/server.crt");
  EXPECT_EQ(config->tls.key_file, root + "/tls/server.key");
  EXPECT_EQ(config->tls.ca_file, root + "/tls/ca.crt");
  EXPECT_TRUE(config->tls.verify_client);
  EXPECT_EQ(config->tls.min_version, "1.3");

  EXPECT_EQ(config->backend.service.user, "pglane_app");
  EXPECT_EQ(config->backend.service.password, "s3cret");
  EXPECT_EQ(config->backend.connect_timeout_ms, 1500);
  EXPECT_EQ(config->backend.tls.mode, ServerTlsMode::kVerifyFull);
  EXPECT_EQ(config->backend.tls.ca_file, root + "/tls/ca.crt");
  ASSERT_EQ(config->backend.per_user.size(), 1u);
  EXPECT_EQ(config->backend.credential_for("report").user, "reporting");
  EXPECT_EQ(config->backend.credential_for("report").password, "pw");
  EXPECT_EQ(config->backend.credential_for("alice").user, "pglane_app");

  EXPECT_EQ(config->pool.mode, PoolMode::kTransaction);
  EXPECT_EQ(config->pool.size, 42);
  EXPECT_EQ(config->pool.queue_timeout_ms, 250);
  EXPECT_EQ(config->pool.server_idle_timeout_ms, 0);

  ASSERT_EQ(config->regions.size(), 2u);
  EXPECT_EQ(config->regions[0].name, "eu-west");
  EXPECT_EQ(config->regions[0].writer.to_string(), "writer.eu:5432");
  ASSERT_EQ(config->regions[0].readers.size(), 2u);
  EXPECT_EQ(config->regions[0].readers[0].host, "r1.eu");
  EXPECT_EQ(config->regions[0].readers[0].port, 5433);
  EXPECT_EQ(config->regions[0].readers[1].host, "::1");
  EXPECT_EQ(config->regions[0].readers[1].port, 5434);
  EXPECT_EQ(config->regions[1].writer.host, "2001:db8::1");
  EXPECT_EQ(config->regions[1].writer.port, 6543);
  EXPECT_TRUE(config->regions[1].readers.empty());
  EXPECT_EQ(config->home_region().name, "us-east");

  EXPECT_TRUE(config->analytics.enabled);
  EXPECT_EQ(config->analytics.endpoint.to_string(), "olap.internal:5439");
  EXPECT_EQ(config->analytics.credential.user, "analyst");
  EXPECT_EQ(config->analytics.credential.password, "r3port");
  EXPECT_EQ(config->analytics.database, "warehouse");
}

// conf/proxy.toml must stay loadable: lay out the files it names the way the demo sandbox does
// (conf/ next to sandbox/) and load a copy of it.
TEST_F(ConfigTest, ShippedConfigLoadsAgainstASandboxLayout) {
  std::filesystem::path shipped =
      std::filesystem::path(__FILE__).parent_path() / "../../../conf/proxy.toml";
  std::ifstream in(shipped);
  ASSERT_TRUE(in) << shipped;
  std::stringstream text;
  text << in.rdbuf();
  dir_.write("sandbox/users.txt", "alice trust\n");
  dir_.write("sandbox/backend_password", "app-password\n");
  dir_.write("sandbox/tls/server.crt", "cert");
  dir_.write("sandbox/tls/server.key", "key");
  dir_.write("sandbox/tls/ca.crt", "ca");
  dir_.write("sandbox/tls/health.crt", "cert");
  dir_.write("sandbox/tls/health.key", "key");
  dir_.write("sandbox/cache.key", std::string(64, 'f') + "\n");
  std::string path = dir_.write("conf/proxy.toml", text.str());

  absl::StatusOr<ConfigPtr> config = load_config(path);
  ASSERT_TRUE(config.ok()) << config.status();
  const Config& c = **config;
  EXPECT_EQ(c.proxy.listen_addr, "127.0.0.1");
  EXPECT_EQ(c.proxy.listen_port, 6432);
  EXPECT_EQ(c.proxy.users_file, dir_.path("sandbox/users.txt"));
  EXPECT_EQ(c.tls.mode, ClientTlsMode::kRequire);
  EXPECT_EQ(c.tls.cert_file, dir_.path("sandbox/tls/server.crt"));
  // No secret that opens a server: SCRAM pass-through, and a certificate for the probes.
  EXPECT_EQ(c.backend.service.user, "");
  EXPECT_EQ(c.backend.service.password, "");
  EXPECT_EQ(c.health.credential.user, "pglane_health");
  EXPECT_EQ(c.health.credential.password, "");
  EXPECT_EQ(c.health.cert_file, dir_.path("sandbox/tls/health.crt"));
  EXPECT_TRUE(c.cache.enabled);
  EXPECT_EQ(c.backend.tls.mode, ServerTlsMode::kVerifyFull);
  EXPECT_EQ(c.backend.tls.ca_file, dir_.path("sandbox/tls/ca.crt"));
  EXPECT_EQ(c.pool.mode, PoolMode::kTransaction);
  ASSERT_EQ(c.regions.size(), 2u);
  EXPECT_EQ(c.home_region().name, "eu-west");
  EXPECT_EQ(c.home_region().writer.to_string(), "127.0.0.1:15432");
  ASSERT_EQ(c.home_region().readers.size(), 1u);
  EXPECT_EQ(c.home_region().readers[0].to_string(), "127.0.0.1:15433");
  EXPECT_EQ(c.regions[1].name, "us-east");
  EXPECT_EQ(c.regions[1].readers[0].to_string(), "127.0.0.1:15434");
  EXPECT_FALSE(c.analytics.enabled);

  // Without the sandbox the shipped file does not load, and says why.
  std::filesystem::remove(dir_.path("sandbox/users.txt"));
  config = load_config(path);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(": proxy.users_file: file \""));
}

TEST_F(ConfigTest, DefaultsWhenKeysAreOmitted) {
  ConfigPtr config = ok(kMinimal);
  ASSERT_NE(config, nullptr);
  const Config defaults;
  EXPECT_EQ(config->proxy.listen_addr, defaults.proxy.listen_addr);
  EXPECT_EQ(config->proxy.listen_port, 6432);
  EXPECT_EQ(config->proxy.workers, 0);
  EXPECT_EQ(config->proxy.region, "");
  EXPECT_EQ(config->proxy.max_client_conn, 10000);
  EXPECT_EQ(config->proxy.max_message_size, uint64_t{1} << 30);
  EXPECT_EQ(config->proxy.auth_timeout_ms, 10000);
  EXPECT_EQ(config->proxy.client_idle_timeout_ms, 0);
  EXPECT_EQ(config->proxy.log_level, LogLevel::kInfo);
  EXPECT_EQ(config->tls.mode, ClientTlsMode::kDisable);
  EXPECT_FALSE(config->tls.verify_client);
  EXPECT_EQ(config->tls.min_version, "1.2");
  EXPECT_EQ(config->backend.service.user, "");
  EXPECT_EQ(config->backend.service.password, "");
  EXPECT_TRUE(config->backend.per_user.empty());
  EXPECT_EQ(config->backend.tls.mode, ServerTlsMode::kPrefer);
  EXPECT_EQ(config->backend.connect_timeout_ms, 5000);
  EXPECT_EQ(config->pool.mode, PoolMode::kTransaction);
  EXPECT_EQ(config->pool.size, 20);
  EXPECT_EQ(config->pool.queue_timeout_ms, 5000);
  EXPECT_EQ(config->pool.server_idle_timeout_ms, 600000);
  EXPECT_FALSE(config->analytics.enabled);
  ASSERT_EQ(config->regions.size(), 1u);
  EXPECT_EQ(config->home_region().name, "eu-west");
  EXPECT_EQ(config->home_region().writer.to_string(), "db1:5432");
}

TEST_F(ConfigTest, HomeRegionIsTheFirstRegionWhenProxyRegionIsEmpty) {
  ConfigPtr config = ok(std::string(kMinimal) + R"(
[[regions]]
name = "us-east"
writer = "db2:5432"

[health]
user = "pglane_health"
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->home_region().name, "eu-west");
}

TEST_F(ConfigTest, SeveralInstancesWithoutAnyLoginForTheHealthCheckerAreRejected) {
  EXPECT_THAT(error(std::string(kMinimal) + "readers = [\"db2:5432\"]\n"),
              StartsWith(file() + ":1: health.user: required when [backend] has no user"));
  // The same address twice is one instance: nothing to fail over to, nothing to probe.
  EXPECT_NE(ok(std::string(kMinimal) + "[[regions]]\nname = \"b\"\nwriter = \"db1:5432\"\n"),
            nullptr);
}

// The smallest aurora region: instance addresses from a pattern on the cluster endpoint's port.
constexpr char kAurora[] = R"([proxy]
users_file = "users.txt"

[health]
user = "pglane_health"

[[regions]]
name = "eu-west-1"
source = "aurora"
)";

TEST_F(ConfigTest, AuroraRegionTakesAClusterEndpointAndAPatternOrAnInstanceMap) {
  ConfigPtr config = ok(std::string(kAurora) +
                        "cluster_endpoint = \"db.cluster-abc.eu-west-1.rds.amazonaws.com:5432\"\n"
                        "instance_host_pattern = \"?.abc.eu-west-1.rds.amazonaws.com\"\n"
                        "global_database = true\n"
                        "[regions.instances]\n"
                        "instance-1 = \"127.0.0.1:15432\"\n");
  ASSERT_NE(config, nullptr);
  const Region& r = config->regions[0];
  EXPECT_EQ(r.source, TopologySource::kAurora);
  EXPECT_EQ(r.writer.to_string(), "db.cluster-abc.eu-west-1.rds.amazonaws.com:5432");
  EXPECT_EQ(r.instance_host_pattern, "?.abc.eu-west-1.rds.amazonaws.com");
  ASSERT_EQ(r.instances.count("instance-1"), 1u);
  EXPECT_EQ(r.instances.at("instance-1").to_string(), "127.0.0.1:15432");
  EXPECT_EQ(r.aws_region, "eu-west-1");
  EXPECT_TRUE(r.global_database);

  // A map alone is enough: its instances are where the topology is read first.
  config = ok(std::string(kAurora) + "[regions.instances]\ni1 = \"127.0.0.1:1\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->regions[0].aws_region, "eu-west-1");
}

TEST_F(ConfigTest, AuroraRegionMistakesNameTheKey) {
  EXPECT_THAT(error(std::string(kAurora)),
              StartsWith(file() + ":7: regions[0].cluster_endpoint: an aurora region needs"));
  EXPECT_THAT(error(std::string(kAurora) + "cluster_endpoint = \"db:5432\"\n"),
              StartsWith(file() + ":7: regions[0].instance_host_pattern: an aurora region needs"));
  // An empty map addresses nothing.
  EXPECT_THAT(error(std::string(kAurora) + "cluster_endpoint = \"db:5432\"\n[regions.instances]\n"),
              StartsWith(file() + ":7: regions[0].instance_host_pattern: an aurora region needs"));
  EXPECT_THAT(error(std::string(kAurora) +
                    "cluster_endpoint = \"db:5432\"\ninstance_host_pattern = \"db\"\n"),
              StartsWith(file() + ":11: regions[0].instance_host_pattern: must contain one '?'"));
  EXPECT_THAT(error(std::string(kAurora) +
                    "cluster_endpoint = \"db:5432\"\ninstance_host_pattern = \"?.db\"\n"
                    "writer = \"db:5432\"\n"),
              StartsWith(file() + ":12: regions[0].writer: unknown key (expected one of: name, "
                                  "source, cluster_endpoint"));
  // The bad address, and then (no instance left, no cluster endpoint) nothing to read from.
  EXPECT_THAT(error(std::string(kAurora) + "[regions.instances]\ni1 = \"nohost\"\n"),
              HasSubstr("\n" + file() + ":11: regions[0].instances.i1: expected \"host:port\""));
  EXPECT_THAT(error(std::string(kMinimal) + "source = \"rds\"\n"),
              StartsWith(file() + ":7: regions[0].source: must be one of \"static\", \"aurora\""));
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigDirectoryNotTheWorkingDirectory) {
  dir_.write("etc/users.txt", "bob trust\n");
  std::string config_path = dir_.path("etc/pglane/proxy.toml");
  absl::StatusOr<ConfigPtr> config = parse_config(R"([proxy]
users_file = "../users.txt"
[[regions]]
name = "a"
writer = "h:1"
)",
                                                  config_path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->proxy.users_file, dir_.path("etc/users.txt"));

  std::string absolute_users = dir_.path("users.txt");
  config = parse_config("[proxy]\nusers_file = \"" + absolute_users +
                            "\"\n[[regions]]\nname = \"a\"\nwriter = \"h:1\"\n",
                        config_path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->proxy.users_file, absolute_users);
}

TEST_F(ConfigTest, LoadConfigReadsTheFileAndStoresItsAbsolutePath) {
  dir_.write("proxy.toml", kMinimal);
  std::string cwd = std::filesystem::current_path().string();
  ASSERT_EQ(::chdir(dir_.root().c_str()), 0);
  absl::StatusOr<ConfigPtr> config = load_config("proxy.toml");
  ASSERT_EQ(::chdir(cwd.c_str()), 0);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->path, file());
  EXPECT_EQ((*config)->proxy.users_file, dir_.path("users.txt"));
}

TEST_F(ConfigTest, LoadConfigOfAMissingFileNamesTheFile) {
  absl::StatusOr<ConfigPtr> config = load_config(dir_.path("nope.toml"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith(dir_.path("nope.toml") + ": cannot read"));
}

TEST_F(ConfigTest, SyntaxErrorNamesTheLine) {
  EXPECT_THAT(error("[proxy]\nusers_file = \"users.txt\"\nlisten_port = = 3\n"),
              StartsWith(at(3) + "syntax error: "));
}

TEST_F(ConfigTest, UnknownKeyIsReportedWithItsLine) {
  EXPECT_THAT(error(R"([proxy]
users_file = "users.txt"
colour = 6432

[[regions]]
name = "eu-west"
writer = "db1:5432"
)"),
              StartsWith(at(3) + "proxy.colour: unknown key (expected one of: listen_addr, "));
}

// Every problem at once, unknown keys first with the key probably meant; a misspelt required key
// is not also reported missing.
TEST_F(ConfigTest, EveryProblemIsReportedUnknownKeysFirstWithTheNearestKnownKey) {
  const std::string text = R"([proxy]
listen_port = 0
users_fil = "users.txt"
listen_prot = 7000

[pool]
size = "big"
mdoe = "session"

[[regions]]
name = "eu-west"
writer = "db1:5432"
)";
  const std::string e = error(text);
  EXPECT_EQ(e, at(3) + "proxy.users_fil: unknown key (did you mean \"users_file\"?)\n" + at(4) +
                   "proxy.listen_prot: unknown key (did you mean \"listen_port\"?)\n" + at(8) +
                   "pool.mdoe: unknown key (did you mean \"mode\"?)\n" + at(2) +
                   "proxy.listen_port: must be between 1 and 65535, got 0\n" + at(7) +
                   "pool.size: expected an integer, got a string");
  EXPECT_THAT(error("[proxy]\nlisten_port_typo = 1\nusers_file = \"users.txt\"\n[[regions]]\n"
                    "name = \"a\"\nwriter = \"h:1\"\n"),
              StartsWith(at(2) + "proxy.listen_port_typo: unknown key (did you mean "
                                 "\"listen_port\"?)"));
  // Nothing close: the keys there are.
  EXPECT_THAT(error("[proxy]\nzzz = 1\nusers_file = \"users.txt\"\n[[regions]]\nname = \"a\"\n"
                    "writer = \"h:1\"\n"),
              StartsWith(at(2) + "proxy.zzz: unknown key (expected one of: listen_addr,"));
}

TEST_F(ConfigTest, UnknownKeysAreRejectedInEveryTable) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const Case cases[] = {
      {"[tls]\nmode = \"disable\"\nsni = true\n", at(9) + "tls.sni: unknown key"},
      {"[backend]\nhost = \"x\"\n", at(8) + "backend.host: unknown key"},
      {"[backend.tls]\nmode = \"prefer\"\ncert_file = \"x\"\n", at(9) + "backend.tls.cert_file"},
      {"[backend.users.bob]\npasswd = \"x\"\n", at(8) + "backend.users.bob.passwd: unknown"},
      {"[pool]\nmax = 3\n", at(8) + "pool.max: unknown key"},
      {"[[regions]]\nname = \"b\"\nwriter = \"h:1\"\nreplicas = []\n",
       at(10) + "regions[1].replicas: unknown key"},
      {"[analytics]\nendpoint = \"h:1\"\nschema = \"x\"\n", at(9) + "analytics.schema: unknown"},
  };
  for (const Case& c : cases) {
    // kMinimal is 6 lines, so the appended text starts on line 7.
    EXPECT_THAT(error(std::string(kMinimal) + c.text), StartsWith(c.expected)) << c.text;
  }
  // A top-level key must come before the first table header.
  EXPECT_THAT(error("colour = 1\n" + std::string(kMinimal)), StartsWith(at(1) + "colour: unknown"));
  // After a header, the same key belongs to that table.
  EXPECT_THAT(
      error(std::string(kMinimal) + "colour = 1\n"),
      StartsWith(at(7) + "regions[0].colour: unknown key (expected one of: name, source, writer, "
                         "readers)"));
}

TEST_F(ConfigTest, WrongTypeSaysWhatWasExpected) {
  EXPECT_EQ(error(R"([proxy]
users_file = "users.txt"
listen_port = "6432"
[[regions]]
name = "eu-west"
writer = "db1:5432"
)"),
            at(3) + "proxy.listen_port: expected an integer, got a string");
  EXPECT_THAT(error(std::string(kMinimal) + "[tls]\nverify_client = \"yes\"\n"),
              StartsWith(at(8) + "tls.verify_client: expected a boolean, got a string"));
  EXPECT_THAT(error(std::string(kMinimal) + "[pool]\nsize = 2.5\n"),
              StartsWith(at(8) + "pool.size: expected an integer, got a float"));
  EXPECT_THAT(error("pool = 3\n" + std::string(kMinimal)),
              StartsWith(at(1) + "pool: expected a table, got an integer"));
  EXPECT_THAT(error(std::string(kMinimal) + "[backend]\npassword = 1234\n"),
              StartsWith(at(8) + "backend.password: expected a string, got an integer"));
  EXPECT_THAT(error("regions = \"eu-west\"\n[proxy]\nusers_file = \"users.txt\"\n"),
              StartsWith(at(1) + "regions: expected an array of tables"));
  EXPECT_THAT(error(std::string(kMinimal) + "[[regions]]\nname = \"b\"\nwriter = \"h:1\"\n" +
                    "readers = \"h:2\"\n"),
              StartsWith(at(10) + "regions[1].readers: expected an array"));
  EXPECT_THAT(error(std::string(kMinimal) + "[[regions]]\nname = \"b\"\nwriter = \"h:1\"\n" +
                    "readers = [\"h:2\", 5]\n"),
              StartsWith(at(10) + "regions[1].readers[1]: expected a string, got an integer"));
}

TEST_F(ConfigTest, OutOfRangeValuesNameTheRange) {
  struct Case {
    std::string key_value;  // goes into [proxy] on line 3
    std::string expected;
  };
  const Case cases[] = {
      {"listen_port = 0", "proxy.listen_port: must be between 1 and 65535, got 0"},
      {"listen_port = 65536", "proxy.listen_port: must be between 1 and 65535, got 65536"},
      {"workers = 257", "proxy.workers: must be between 0 and 256, got 257"},
      {"workers = -1", "proxy.workers: must be between 0 and 256, got -1"},
      {"max_client_conn = 0", "proxy.max_client_conn: must be between 1 and 1000000, got 0"},
      {"max_message_size = 1023",
       "proxy.max_message_size: must be between 1024 and 1073741824, got 1023"},
      {"max_message_size = 1073741825",
       "proxy.max_message_size: must be between 1024 and 1073741824, got 1073741825"},
      {"auth_timeout_ms = 99", "proxy.auth_timeout_ms: must be between 100 and 600000, got 99"},
      {"client_idle_timeout_ms = -5", "proxy.client_idle_timeout_ms: must be at least 0, got -5"},
      {"client_idle_timeout_ms = 4294967296",
       "proxy.client_idle_timeout_ms: must be at least 0, got 4294967296"},
      {"log_level = \"verbose\"",
       "proxy.log_level: must be one of \"debug\", \"info\", \"warning\", \"error\"; got "
       "\"verbose\""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(error("[proxy]\nusers_file = \"users.txt\"\n" + c.key_value +
                    "\n[[regions]]\nname = \"a\"\nwriter = \"h:1\"\n"),
              at(3) + c.expected);
  }
  EXPECT_THAT(error(std::string(kMinimal) + "[pool]\nsize = 10001\n"),
              StartsWith(at(8) + "pool.size: must be between 1 and 10000"));
  EXPECT_THAT(error(std::string(kMinimal) + "[pool]\nqueue_timeout_ms = 3600001\n"),
              StartsWith(at(8) + "pool.queue_timeout_ms: must be between 0 and 3600000"));
  EXPECT_THAT(error(std::string(kMinimal) + "[pool]\nmode = \"statement\"\n"),
              StartsWith(at(8) + "pool.mode: must be one of \"session\", \"transaction\""));
  EXPECT_THAT(error(std::string(kMinimal) + "[backend]\nconnect_timeout_ms = 50\n"),
              StartsWith(at(8) + "backend.connect_timeout_ms: must be between 100 and 600000"));
  EXPECT_THAT(error(std::string(kMinimal) + "[backend.tls]\nmode = \"verify\"\n"),
              StartsWith(at(8) + "backend.tls.mode: must be one of \"disable\", \"prefer\""));
  EXPECT_THAT(error(std::string(kMinimal) + "[tls]\nmode = \"on\"\n"),
              StartsWith(at(8) + "tls.mode: must be one of \"disable\", \"allow\""));
  EXPECT_THAT(error(std::string(kMinimal) + "[tls]\nmin_version = \"1.1\"\n"),
              StartsWith(at(8) + "tls.min_version: must be one of \"1.2\", \"1.3\"; got \"1.1\""));
}

TEST_F(ConfigTest, MissingRequiredKeyNamesItsTableLine) {
  EXPECT_EQ(error("\n\n[proxy]\nlisten_port = 6432\n[[regions]]\nname = \"a\"\nwriter = \"h:1\"\n"),
            at(3) + "proxy.users_file: missing required key");
  EXPECT_THAT(error("[[regions]]\nname = \"a\"\nwriter = \"h:1\"\n"),
              StartsWith(at(1) + "proxy.users_file: missing required key"));
  EXPECT_EQ(error("[proxy]\nusers_file = \"users.txt\"\n"),
            at(1) + "regions: at least one [[regions]] table is required");
  EXPECT_EQ(error("regions = []\n[proxy]\nusers_file = \"users.txt\"\n"),
            at(1) + "regions: at least one region is required");
  EXPECT_EQ(error(std::string(kMinimal) + "\n[[regions]]\nname = \"us-east\"\n"),
            at(8) + "regions[1].writer: missing required key");
  EXPECT_EQ(error(std::string(kMinimal) + "[[regions]]\nwriter = \"h:1\"\n"),
            at(7) + "regions[1].name: missing required key");
  EXPECT_EQ(error(std::string(kMinimal) + "[analytics]\nuser = \"x\"\n"),
            at(7) + "analytics.endpoint: missing required key");
  EXPECT_EQ(error(std::string(kMinimal) + "[[regions]]\nname = \"\"\nwriter = \"h:1\"\n"),
            at(8) + "regions[1].name: must not be empty");
}

TEST_F(ConfigTest, BadEndpointsAreRejected) {
  const std::string bad[] = {
      "localhost", ":5432", "db:0",    "db:65536", "db:",      "db:54x2", "db:-1",    "::1:5432",
      "[::1]5432", "[::1]", "[]:5432", "db :5432", "db:+5432", "",        "[::1:5432"};
  for (const std::string& writer : bad) {
    EXPECT_THAT(
        error("[proxy]\nusers_file = \"users.txt\"\n[[regions]]\nname = \"a\"\nwriter = \"" +
              writer + "\"\n"),
        StartsWith(at(5) + "regions[0].writer: "))
        << writer;
  }
  EXPECT_THAT(error(std::string(kMinimal) + "readers = [\"r1:5433\", \"r2\"]\n"),
              StartsWith(at(7) + "regions[0].readers[1]: expected \"host:port\""));
  EXPECT_THAT(error(std::string(kMinimal) + "[analytics]\nendpoint = \"olap\"\n"),
              StartsWith(at(8) + "analytics.endpoint: expected \"host:port\""));
}

TEST_F(ConfigTest, BracketedIpv6EndpointsParse) {
  ConfigPtr config = ok(R"([proxy]
users_file = "users.txt"
[health]
user = "probe"
[[regions]]
name = "v6"
writer = "[::1]:5432"
readers = ["[fe80::1%eth0]:1", "10.0.0.1:65535"]
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->regions[0].writer.host, "::1");
  EXPECT_EQ(config->regions[0].writer.port, 5432);
  EXPECT_EQ(config->regions[0].readers[0].host, "fe80::1%eth0");
  EXPECT_EQ(config->regions[0].readers[0].port, 1);
  EXPECT_EQ(config->regions[0].readers[1].port, 65535);
}

TEST_F(ConfigTest, UnknownProxyRegionIsReportedAtProxyRegion) {
  EXPECT_EQ(error(R"([proxy]
users_file = "users.txt"
region = "ap-south"

[[regions]]
name = "eu-west"
writer = "db1:5432"

[[regions]]
name = "us-east"
writer = "db2:5432"
)"),
            at(3) + "proxy.region: unknown region \"ap-south\" (regions are: eu-west, us-east)");
}

TEST_F(ConfigTest, DuplicateRegionNamesAreRejected) {
  EXPECT_EQ(error(std::string(kMinimal) + "[[regions]]\nname = \"eu-west\"\nwriter = \"h:1\"\n"),
            at(8) + "regions[1].name: duplicate region \"eu-west\" (also regions[0])");
}

TEST_F(ConfigTest, ClientTlsNeedsCertAndKeyFilesThatExist) {
  std::string cert = dir_.write("server.crt", "cert");
  std::string key = dir_.write("server.key", "key");
  // Missing file.
  EXPECT_EQ(
      error(std::string(kMinimal) +
            "[tls]\nmode = \"require\"\ncert_file = \"nope.crt\"\nkey_file = \"server.key\"\n"),
      at(9) + "tls.cert_file: file \"" + dir_.path("nope.crt") + "\" does not exist");
  // Missing key (reported at tls.mode, which is what makes it required).
  EXPECT_EQ(error(std::string(kMinimal) + "[tls]\nmode = \"prefer\"\ncert_file = \"server.crt\"\n"),
            at(8) + "tls.key_file: required when tls.mode is not \"disable\"");
  // A directory is not a certificate.
  EXPECT_THAT(error(std::string(kMinimal) +
                    "[tls]\nmode = \"allow\"\ncert_file = \".\"\nkey_file = \"server.key\"\n"),
              StartsWith(at(9) + "tls.cert_file: \"" + dir_.root().string() + "\" is a directory"));
  // With mode = "disable" nothing is checked.
  EXPECT_NE(ok(std::string(kMinimal) + "[tls]\nmode = \"disable\"\ncert_file = \"nope.crt\"\n"),
            nullptr);
  // verify_client needs a CA.
  EXPECT_EQ(error(std::string(kMinimal) +
                  "[tls]\nmode = \"require\"\ncert_file = \"server.crt\"\nkey_file = "
                  "\"server.key\"\nverify_client = true\n"),
            at(11) + "tls.ca_file: required when tls.verify_client is true");
  EXPECT_THAT(error(std::string(kMinimal) +
                    "[tls]\nmode = \"require\"\ncert_file = \"server.crt\"\nkey_file = "
                    "\"server.key\"\nverify_client = true\nca_file = \"ca.crt\"\n"),
              StartsWith(at(12) + "tls.ca_file: file \""));
  // Absolute paths are used as they are.
  ConfigPtr config = ok(std::string(kMinimal) + "[tls]\nmode = \"require\"\ncert_file = \"" + cert +
                        "\"\nkey_file = \"" + key + "\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->tls.cert_file, cert);
}

TEST_F(ConfigTest, UnreadableKeyFileIsRejected) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root can read any file";
  }
  dir_.write("server.crt", "cert");
  std::string key = dir_.write("server.key", "key");
  ASSERT_EQ(::chmod(key.c_str(), 0), 0);
  EXPECT_THAT(error(std::string(kMinimal) +
                    "[tls]\nmode = \"require\"\ncert_file = \"server.crt\"\nkey_file = "
                    "\"server.key\"\n"),
              StartsWith(at(10) + "tls.key_file: cannot read \"" + key + "\": Permission denied"));
}

TEST_F(ConfigTest, DeviceIsNotACertificate) {
  dir_.write("server.key", "key");
  EXPECT_EQ(error(std::string(kMinimal) +
                  "[tls]\nmode = \"require\"\ncert_file = \"/dev/null\"\nkey_file = "
                  "\"server.key\"\n"),
            at(9) + "tls.cert_file: \"/dev/null\" is not a regular file");
}

TEST_F(ConfigTest, MissingUsersFileIsRejected) {
  EXPECT_EQ(error("[proxy]\nusers_file = \"missing.txt\"\n[[regions]]\nname = \"a\"\nwriter = "
                  "\"h:1\"\n"),
            at(2) + "proxy.users_file: file \"" + dir_.path("missing.txt") + "\" does not exist");
}

TEST_F(ConfigTest, BackendVerifyModesNeedACaFileThatExists) {
  EXPECT_EQ(error(std::string(kMinimal) + "[backend.tls]\nmode = \"verify-ca\"\n"),
            at(8) +
                "backend.tls.ca_file: required when backend.tls.mode is \"verify-ca\" or "
                "\"verify-full\"");
  EXPECT_THAT(error(std::string(kMinimal) +
                    "[backend.tls]\nmode = \"verify-full\"\nca_file = \"ca.crt\"\n"),
              StartsWith(at(9) + "backend.tls.ca_file: file \""));
  EXPECT_NE(ok(std::string(kMinimal) + "[backend.tls]\nmode = \"require\"\n"), nullptr);
}

TEST_F(ConfigTest, BackendPasswordFile) {
  dir_.write("pw", "hunter2\n");
  ConfigPtr config = ok(std::string(kMinimal) + "[backend]\npassword_file = \"pw\"\n" +
                        "[backend.users.bob]\npassword_file = \"pw\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->backend.service.password, "hunter2");
  EXPECT_EQ(config->backend.credential_for("bob").password, "hunter2");
  EXPECT_EQ(config->backend.credential_for("bob").user, "");

  EXPECT_EQ(error(std::string(kMinimal) + "[backend]\npassword = \"x\"\npassword_file = \"pw\"\n"),
            at(9) +
                "backend.password_file: set either backend.password or "
                "backend.password_file, not both");
  EXPECT_THAT(
      error(std::string(kMinimal) + "[backend]\npassword_file = \"nope\"\n"),
      StartsWith(at(8) + "backend.password_file: cannot read \"" + dir_.path("nope") + "\": "));
  dir_.write("empty", "\nsecond\n");
  EXPECT_THAT(error(std::string(kMinimal) + "[backend]\npassword_file = \"empty\"\n"),
              StartsWith(at(8) + "backend.password_file: "));
  EXPECT_THAT(error(std::string(kMinimal) + "[backend.users]\nbob = \"pw\"\n"),
              StartsWith(at(8) + "backend.users.bob: expected a table, got a string"));
}

TEST_F(ConfigTest, EveryErrorIsReportedInFileOrderAfterUnknownKeys) {
  EXPECT_EQ(error(R"([proxy]
users_file = "users.txt"
workers = 999
[pool]
size = 0
[[regions]]
name = "a"
writer = "h:1"
[tls]
bogus = 1
)"),
            at(10) +
                "tls.bogus: unknown key (expected one of: mode, cert_file, key_file, ca_file, "
                "verify_client, min_version)\n" +
                at(3) + "proxy.workers: must be between 0 and 256, got 999\n" + at(5) +
                "pool.size: must be between 1 and 10000, got 0");
  // Keys inside a table are visited alphabetically by toml++, yet file order wins.
  EXPECT_EQ(error(R"([proxy]
users_file = "users.txt"
workers = "many"
listen_port = 0
[[regions]]
name = "a"
writer = "h:1"
)"),
            at(3) + "proxy.workers: expected an integer, got a string\n" + at(4) +
                "proxy.listen_port: must be between 1 and 65535, got 0");
}

TEST_F(ConfigTest, ABadRegionNameDoesNotAlsoReportProxyRegion) {
  EXPECT_EQ(error(R"([proxy]
users_file = "users.txt"
region = "a"
[[regions]]
name = 5
writer = "h:1"
)"),
            at(5) + "regions[0].name: expected a string, got an integer");
}

TEST_F(ConfigTest, RoutingAndHealthSections) {
  ConfigPtr c = ok(std::string(kMinimal) + R"(
[routing]
max_replica_lag_ms = 250
read_your_writes = "window"
read_your_writes_window_ms = 500
no_replica = "error"
read_only_functions = ["random", "my_report"]
analysis_cache_size = 0

[health]
interval_ms = 100
timeout_ms = 300
fall = 3
rise = 2
user = "probe"
password = "secret"
database = "app"
)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->routing.max_replica_lag_ms, 250);
  EXPECT_EQ(c->routing.read_your_writes, ReadYourWrites::kWindow);
  EXPECT_EQ(c->routing.read_your_writes_window_ms, 500);
  EXPECT_EQ(c->routing.no_replica, NoReplica::kError);
  EXPECT_EQ(c->routing.read_only_functions, (std::vector<std::string>{"random", "my_report"}));
  EXPECT_EQ(c->routing.analysis_cache_size, 0);
  EXPECT_EQ(c->health.interval_ms, 100);
  EXPECT_EQ(c->health.fall, 3);
  EXPECT_EQ(c->health.rise, 2);
  EXPECT_EQ(c->health.credential.user, "probe");
  EXPECT_EQ(c->health.database, "app");
  ConfigPtr d = ok(kMinimal);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->routing.enabled);
  EXPECT_EQ(d->routing.read_your_writes, ReadYourWrites::kTable);
  EXPECT_EQ(d->health.interval_ms, 1000);
}

TEST_F(ConfigTest, HealthCertificateInsteadOfPassword) {
  dir_.write("tls/health.crt", "cert");
  dir_.write("tls/health.key", "key");
  ConfigPtr c = ok(std::string(kMinimal) + R"(
[health]
user = "pglane_health"
cert_file = "tls/health.crt"
key_file = "tls/health.key"
)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->health.cert_file, dir_.path("tls/health.crt"));
  EXPECT_EQ(c->health.key_file, dir_.path("tls/health.key"));
  EXPECT_TRUE(c->health.credential.password.empty());
  const int base = 7;
  EXPECT_EQ(error(std::string(kMinimal) + "\n[health]\ncert_file = \"tls/health.crt\"\n"),
            at(base + 2) + "health.key_file: cert_file and key_file go together");
  EXPECT_THAT(error(std::string(kMinimal) +
                    "\n[health]\ncert_file = \"tls/nope.crt\"\nkey_file = \"tls/health.key\"\n"),
              StartsWith(at(base + 2) + "health.cert_file: "));
}

TEST_F(ConfigTest, PassThroughNeedsAHealthLoginWhenThereAreReaders) {
  const std::string base = R"([proxy]
users_file = "users.txt"
[[regions]]
name = "a"
writer = "h:1"
readers = ["h:2"]
)";
  EXPECT_THAT(error(base), HasSubstr("health.user: required when [backend] has no user"));
  EXPECT_TRUE(ok(base + "[health]\nuser = \"probe\"\npassword = \"x\"\n"));
  EXPECT_TRUE(ok(base + "[backend]\nuser = \"svc\"\npassword = \"x\"\n"));
  dir_.write("h.crt", "cert");
  dir_.write("h.key", "key");
  EXPECT_THAT(error(base + "[backend.tls]\nmode = \"disable\"\n[health]\nuser = \"probe\"\n"
                           "cert_file = \"h.crt\"\nkey_file = \"h.key\"\n"),
              HasSubstr("health.cert_file: a client certificate needs TLS to the servers"));
}

TEST_F(ConfigTest, BadRoutingValuesNameTheKey) {
  const int base = 7;  // lines in kMinimal, plus the blank line and the table header
  EXPECT_EQ(error(std::string(kMinimal) + "\n[routing]\nread_your_writes = \"maybe\"\n"),
            at(base + 2) +
                "routing.read_your_writes: must be one of \"table\", \"database\", \"session\", "
                "\"window\", \"off\", \"lsn\"; got \"maybe\"");
  EXPECT_THAT(error(std::string(kMinimal) + "\n[health]\ninterval_ms = 10\n"),
              StartsWith(at(base + 2) + "health.interval_ms: must be between 100 and"));
  EXPECT_THAT(error(std::string(kMinimal) + "\n[routing]\nread_only_functions = [1]\n"),
              StartsWith(at(base + 2) + "routing.read_only_functions[0]:"));
}

TEST_F(ConfigTest, AdminSectionListsConsoleUsersAndTheMetricsEndpoint) {
  ConfigPtr config = ok(std::string(kMinimal) + R"(
[admin]
database = "console"
users = ["ops"]
stats_users = ["grafana", "nagios"]
metrics_listen = "127.0.0.1:9187"
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->admin.database, "console");
  EXPECT_EQ(config->admin.users, std::vector<std::string>{"ops"});
  EXPECT_EQ(config->admin.stats_users, (std::vector<std::string>{"grafana", "nagios"}));
  EXPECT_TRUE(config->admin.metrics);
  EXPECT_EQ(config->admin.metrics_listen.to_string(), "127.0.0.1:9187");
  EXPECT_EQ(config->proxy.shutdown_timeout_ms, 30000);  // the default

  ConfigPtr plain = ok(kMinimal);
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->admin.database, "pglane");
  EXPECT_FALSE(plain->admin.metrics);
  EXPECT_TRUE(plain->admin.users.empty());
}

TEST_F(ConfigTest, RedisSectionForSharedFloors) {
  ConfigPtr config = ok(std::string(kMinimal) + R"(
[redis]
endpoint = "cache.internal:6380"
server_name = "master.cache.example"
user = "pglane"
password = "pw"
floor_wait_ms = 0
)");
  ASSERT_NE(config, nullptr);
  EXPECT_TRUE(config->redis.enabled);
  EXPECT_EQ(config->redis.endpoint.to_string(), "cache.internal:6380");
  EXPECT_TRUE(config->redis.tls);
  EXPECT_EQ(config->redis.server_name, "master.cache.example");
  EXPECT_EQ(config->redis.credential.user, "pglane");
  EXPECT_EQ(config->redis.floor_wait_ms, 0);
  EXPECT_EQ(config->redis.floor_channel, "pglane:floors");
  EXPECT_FALSE(ok(kMinimal)->redis.enabled);
  EXPECT_THAT(error(std::string(kMinimal) + "[redis]\ntls = true\n"),
              StartsWith(at(7) + "redis.endpoint: missing required key"));
  EXPECT_THAT(error(std::string(kMinimal) + "[redis]\nendpoint = \"r:1\"\nfloor_wait_ms = -1\n"),
              StartsWith(at(9) + "redis.floor_wait_ms: must be between 0 and"));
  EXPECT_THAT(
      error(std::string(kMinimal) + "[redis]\nendpoint = \"r:1\"\ncert_file = \"users.txt\"\n"),
      StartsWith(at(9) + "redis.key_file:"));
}

TEST_F(ConfigTest, CacheSectionNeedsRedisAndAKey) {
  dir_.write("cache.key", std::string(64, 'a') + "\n");
  dir_.write("short.key", "abc\n");
  const std::string redis = "[redis]\nendpoint = \"r:1\"\n";
  ConfigPtr config = ok(std::string(kMinimal) + redis + R"(
[cache]
enabled = true
tables = ["items", "Public.Orders"]
ttl_ms = 5000
hmac_key_file = "cache.key"
)");
  ASSERT_NE(config, nullptr);
  EXPECT_TRUE(config->cache.enabled);
  EXPECT_EQ(config->cache.tables.size(), 2u);
  EXPECT_EQ(config->cache.ttl_ms, 5000);
  EXPECT_EQ(config->cache.hmac_key, std::string(64, 'a'));
  EXPECT_EQ(config->cache.key_prefix, "pglane");
  EXPECT_FALSE(ok(kMinimal)->cache.enabled);
  EXPECT_THAT(
      error(std::string(kMinimal) + "[cache]\nenabled = true\nhmac_key_file = \"cache.key\"\n"),
      StartsWith(at(8) + "cache.enabled: the result cache keeps its entries in Redis"));
  EXPECT_THAT(error(std::string(kMinimal) + redis + "[cache]\nenabled = true\n"),
              StartsWith(at(9) + "cache.hmac_key_file: missing required key"));
  EXPECT_THAT(error(std::string(kMinimal) + redis +
                    "[cache]\nenabled = true\nhmac_key_file = \"short.key\"\n"),
              StartsWith(at(11) + "cache.hmac_key_file:"));
  EXPECT_THAT(error(std::string(kMinimal) + redis + "[cache]\nttl = 5\n"),
              StartsWith(at(10) + "cache.ttl: unknown key"));
}

TEST_F(ConfigTest, LogFormatAndSlowTransactionLog) {
  ConfigPtr config =
      ok("[proxy]\nusers_file = \"users.txt\"\nlog_format = \"json\"\n"
         "slow_transaction_ms = 250\n[[regions]]\nname = \"a\"\nwriter = \"h:1\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->proxy.log_format, LogFormat::kJson);
  EXPECT_EQ(config->proxy.slow_transaction_ms, 250);
  EXPECT_THAT(error("[proxy]\nusers_file = \"users.txt\"\nlog_format = \"xml\"\n[[regions]]\n"
                    "name = \"a\"\nwriter = \"h:1\"\n"),
              StartsWith(at(3) + "proxy.log_format:"));
}

TEST_F(ConfigTest, AdminSectionMistakesNameTheKey) {
  EXPECT_THAT(error(std::string(kMinimal) + "[admin]\nusers = \"ops\"\n"),
              StartsWith(at(8) + "admin.users: expected an array of user names"));
  EXPECT_THAT(error(std::string(kMinimal) + "[admin]\nstats_users = [\"a\", 3]\n"),
              StartsWith(at(8) + "admin.stats_users[1]: expected a non-empty user name"));
  EXPECT_THAT(error(std::string(kMinimal) + "[admin]\nmetrics_listen = \"nowhere\"\n"),
              StartsWith(at(8) + "admin.metrics_listen:"));
  EXPECT_THAT(
      error(std::string(kMinimal) + "[admin]\nmetrics_cert_file = \"users.txt\"\n"),
      StartsWith(at(8) + "admin.metrics_key_file: metrics_cert_file and metrics_key_file go"));
  EXPECT_THAT(error(std::string(kMinimal) + "[admin]\nstat_users = []\n"),
              StartsWith(at(8) + "admin.stat_users: unknown key (did you mean \"stats_users\"?)"));
  EXPECT_THAT(error("[proxy]\nusers_file = \"users.txt\"\nshutdown_timeout_ms = -1\n"
                    "[[regions]]\nname = \"a\"\nwriter = \"h:1\"\n"),
              StartsWith(at(3) + "proxy.shutdown_timeout_ms:"));
}

}  // namespace
}  // namespace pglane::conf
