// conf/loader.h: parse_users / load_users.
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

constexpr char kFile[] = "/etc/pglane/users.txt";
// Salt "saltsaltsaltsalt"; the keys are SHA-256 digests (32 bytes), as PostgreSQL stores them.
constexpr char kScram[] =
    "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=:"
    "PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=";
constexpr char kMd5[] = "md5d41d8cd98f00b204e9800998ecf8427e";

std::string error(const std::string& text) {
  absl::StatusOr<UserMap> users = parse_users(text, kFile);
  EXPECT_FALSE(users.ok());
  if (users.ok()) {
    return "";
  }
  EXPECT_EQ(users.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(users.status().message());
}

TEST(UsersTest, ParsesAllMethodsCommentsAndBlankLines) {
  absl::StatusOr<UserMap> users = parse_users(std::string("# pglane users\n"
                                                          "\n"
                                                          "alice scram-sha-256 ") +
                                                  kScram +
                                                  "\n"
                                                  "  bob\tmd5 " +
                                                  kMd5 +
                                                  "   # legacy client\n"
                                                  "carol trust\r\n"
                                                  "   \n"
                                                  "# dave trust\n",
                                              kFile);
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->size(), 3u);
  EXPECT_EQ(users->at("alice").name, "alice");
  EXPECT_EQ(users->at("alice").method, AuthMethod::kScramSha256);
  EXPECT_EQ(users->at("alice").secret, kScram);
  EXPECT_EQ(users->at("bob").method, AuthMethod::kMd5);
  EXPECT_EQ(users->at("bob").secret, kMd5);
  EXPECT_EQ(users->at("carol").method, AuthMethod::kTrust);
  EXPECT_EQ(users->at("carol").secret, "");
  EXPECT_EQ(users->count("dave"), 0u);
}

TEST(UsersTest, EmptyFileHasNoUsers) {
  absl::StatusOr<UserMap> users = parse_users("", kFile);
  ASSERT_TRUE(users.ok());
  EXPECT_TRUE(users->empty());
}

TEST(UsersTest, UpperCaseMd5IsStoredInLowerCase) {
  absl::StatusOr<UserMap> users =
      parse_users("bob md5 md5D41D8CD98F00B204E9800998ECF8427E\n", kFile);
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->at("bob").secret, kMd5);
}

TEST(UsersTest, DuplicateUserNamesBothLines) {
  EXPECT_EQ(error("alice trust\n# x\nalice md5 " + std::string(kMd5) + "\n"),
            std::string(kFile) + ":3: user alice: duplicate user (first defined on line 1)");
}

TEST(UsersTest, MethodErrors) {
  EXPECT_EQ(error("\nalice\n"),
            std::string(kFile) + ":2: user alice: missing METHOD (scram-sha-256, md5 or trust)");
  EXPECT_EQ(
      error("alice password secret\n"),
      std::string(kFile) +
          ":1: user alice: unknown METHOD \"password\" (expected scram-sha-256, md5 or trust)");
  EXPECT_THAT(error("alice SCRAM-SHA-256 " + std::string(kScram) + "\n"),
              StartsWith(std::string(kFile) + ":1: user alice: unknown METHOD"));
  EXPECT_EQ(error("carol trust sesame\n"),
            std::string(kFile) + ":1: user carol: trust takes no SECRET");
  EXPECT_EQ(error("carol trust\nbob md5 " + std::string(kMd5) + " extra\n"),
            std::string(kFile) + ":2: user bob: unexpected text after SECRET");
}

// Found by the users fuzz target: absl accepts unpadded base64, the login path does not, so such
// a user could never log in while the file loaded without complaint.
TEST(UsersTest, UnpaddedBase64VerifierIsRefused) {
  EXPECT_THAT(error("alice scram-sha-256 SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA$"
                    "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=:"
                    "PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=\n"),
              HasSubstr("salt is not base64"));
}

TEST(UsersTest, Md5SecretShape) {
  const std::string bad[] = {
      "",                                      // missing
      "d41d8cd98f00b204e9800998ecf8427e",      // no prefix
      "md5d41d8cd98f00b204e9800998ecf8427",    // 31 digits
      "md5d41d8cd98f00b204e9800998ecf8427e0",  // 33 digits
      "md5d41d8cd98f00b204e9800998ecf8427g",   // not hex
  };
  for (const std::string& secret : bad) {
    EXPECT_EQ(error("bob md5 " + secret + "\n"),
              std::string(kFile) +
                  ":1: user bob: md5 SECRET must be \"md5\" followed by 32 hex "
                  "digits")
        << secret;
  }
}

TEST(UsersTest, ScramSecretShape) {
  EXPECT_THAT(error("alice scram-sha-256\n"),
              StartsWith(std::string(kFile) + ":1: user alice: scram-sha-256 needs a SECRET"));
  EXPECT_EQ(error("alice scram-sha-256 " + std::string(kMd5) + "\n"),
            std::string(kFile) +
                ":1: user alice: scram-sha-256 SECRET must start with \"SCRAM-SHA-256$\"");
  const std::string salt = "c2FsdHNhbHRzYWx0c2FsdA==";
  const std::string key = "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=";
  const std::string short_key = "Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa7w==";  // 31 bytes
  const std::string bad[] = {
      "SCRAM-SHA-256$",
      "SCRAM-SHA-256$4096:" + salt + ":" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + "$x",
      "SCRAM-SHA-256$" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$0:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$-1:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$abc:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096:$" + key + ":" + key,
      "SCRAM-SHA-256$4096:sa!t$" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + short_key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + short_key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":",
  };
  for (const std::string& secret : bad) {
    std::string message = error("alice scram-sha-256 " + secret + "\n");
    EXPECT_THAT(message,
                StartsWith(std::string(kFile) + ":1: user alice: malformed SCRAM secret: "))
        << secret;
    // Secrets stay out of logs.
    EXPECT_THAT(message, Not(HasSubstr(key))) << secret;
  }
}

TEST(UsersTest, LoadUsersReadsAFile) {
  TestDir dir;
  std::string path =
      dir.write("users.txt", "carol trust\nalice scram-sha-256 " + std::string(kScram) + "\n");
  absl::StatusOr<UserMap> users = load_users(path);
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->size(), 2u);

  std::string bad = dir.write("bad.txt", "carol trust\ncarol trust\n");
  users = load_users(bad);
  ASSERT_FALSE(users.ok());
  EXPECT_THAT(std::string(users.status().message()),
              StartsWith(bad + ":2: user carol: duplicate user"));

  users = load_users(dir.path("missing.txt"));
  ASSERT_FALSE(users.ok());
  EXPECT_THAT(std::string(users.status().message()),
              StartsWith(dir.path("missing.txt") + ": cannot read: "));
}

}  // namespace
}  // namespace pglane::conf
