#include "protocol/messages.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace pglane::protocol {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// Decodes exactly one typed message that fills `buf`, checking that every shorter prefix of it
// asks for more bytes.
Frame one_frame(std::string_view buf) {
  for (std::size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(decode_frame(buf.substr(0, n)).status, DecodeStatus::kNeedMore) << "prefix " << n;
  }
  const auto d = decode_frame(buf);
  EXPECT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.size, buf.size());
  return d.frame;
}

StartupFrame one_startup(std::string_view buf) {
  for (std::size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(decode_startup(buf.substr(0, n)).status, DecodeStatus::kNeedMore) << "prefix " << n;
  }
  const auto d = decode_startup(buf);
  EXPECT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.size, buf.size());
  return d.frame;
}

// ---- Startup phase ----

TEST(Startup, EncodeParseRoundTrip) {
  std::string out;
  encode_startup(out, {{"user", "alice"}, {"database", "shop"}, {"application_name", ""}});
  const StartupFrame f = one_startup(out);
  EXPECT_EQ(f.code, kProtocolV3);
  const auto p = parse_startup(f.code, f.body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->major, 3);
  EXPECT_EQ(p->minor, 0);
  ASSERT_EQ(p->params.size(), 3u);
  EXPECT_EQ(p->get("user"), "alice");
  EXPECT_EQ(p->get("database"), "shop");
  EXPECT_EQ(p->get("application_name"), "");
  EXPECT_EQ(p->get("options"), "");
}

TEST(Startup, VersionSplit) {
  const auto p = parse_startup((3u << 16) | 2u, "user\0u\0\0"sv);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->major, 3);
  EXPECT_EQ(p->minor, 2);
}

TEST(Startup, RepeatedParameterLastWins) {
  const auto p = parse_startup(kProtocolV3, "user\0a\0user\0b\0\0"sv);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->get("user"), "b");
  EXPECT_EQ(p->params.size(), 2u);
}

TEST(Startup, Malformed) {
  EXPECT_FALSE(parse_startup(kProtocolV3, ""sv));                 // nothing at all
  EXPECT_FALSE(parse_startup(kProtocolV3, "user\0bob\0"sv));      // missing terminator
  EXPECT_FALSE(parse_startup(kProtocolV3, "user\0bob"sv));        // unterminated value
  EXPECT_FALSE(parse_startup(kProtocolV3, "user"sv));             // unterminated name
  EXPECT_FALSE(parse_startup(kProtocolV3, "user\0bob\0\0x"sv));   // bytes after terminator
  EXPECT_FALSE(parse_startup(kProtocolV3, "\0"sv));               // no user
  EXPECT_FALSE(parse_startup(kProtocolV3, "database\0d\0\0"sv));  // no user
  EXPECT_FALSE(parse_startup(kProtocolV3, "user\0\0\0"sv));       // empty user
  EXPECT_FALSE(parse_startup(kProtocolV3, "user\0bob\0\0database\0d\0\0"sv));  // empty name
}

TEST(Cancel, EncodeParseRoundTrip) {
  std::string out;
  encode_cancel_request(out, CancelKey{1234, -5678});
  EXPECT_EQ(out.size(), 16u);
  const StartupFrame f = one_startup(out);
  EXPECT_EQ(f.code, kCancelRequestCode);
  const auto k = parse_cancel(f.body);
  ASSERT_TRUE(k);
  EXPECT_EQ(*k, (CancelKey{1234, -5678}));
}

TEST(Cancel, WrongSizes) {
  EXPECT_FALSE(parse_cancel(""sv));
  EXPECT_FALSE(parse_cancel("1234567"sv));
  EXPECT_FALSE(parse_cancel("123456789"sv));
  EXPECT_FALSE(parse_cancel(std::string(32, 'x')));
}

TEST(SslRequest, Encode) {
  std::string out;
  encode_ssl_request(out);
  EXPECT_EQ(out, "\0\0\0\x08\x04\xd2\x16\x2f"sv);
  const StartupFrame f = one_startup(out);
  EXPECT_EQ(f.code, kSslRequestCode);
  EXPECT_TRUE(f.body.empty());
}

// ---- Backend messages ----

TEST(Error, EncodeParseRoundTrip) {
  std::string out;
  encode_error(out, ErrorFields{.severity = "ERROR",
                                .sqlstate = sqlstate::kQueryCanceled,
                                .message = "canceling statement",
                                .detail = "because",
                                .hint = "retry"});
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'E');
  EXPECT_EQ(f.body, "SERROR\0VERROR\0C57014\0Mcanceling statement\0Dbecause\0Hretry\0\0"sv);
  const auto e = parse_error(f.body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "ERROR");
  EXPECT_EQ(e->sqlstate, "57014");
  EXPECT_EQ(e->message, "canceling statement");
}

TEST(Error, DetailAndHintOmittedWhenEmpty) {
  std::string out;
  encode_notice(
      out,
      ErrorFields{
          .severity = "NOTICE", .sqlstate = "00000", .message = "hi", .detail = "", .hint = ""});
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'N');
  EXPECT_EQ(f.body, "SNOTICE\0VNOTICE\0C00000\0Mhi\0\0"sv);
}

TEST(Error, EmbeddedNulIsCutSoTheFrameStaysWellFormed) {
  std::string out;
  encode_error(out, ErrorFields{.severity = "ERROR",
                                .sqlstate = "3D000",
                                .message = "database \"a\0b\" gone"sv,
                                .detail = "",
                                .hint = ""});
  const Frame f = one_frame(out);
  const auto e = parse_error(f.body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "database \"a");
}

TEST(Error, FatalError) {
  const std::string out = fatal_error(sqlstate::kTooManyConnections, "too many");
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'E');
  const auto e = parse_error(f.body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "FATAL");
  EXPECT_EQ(e->sqlstate, "53300");
  EXPECT_EQ(e->message, "too many");
}

TEST(Error, ParsePrefersNonLocalizedSeverity) {
  const auto e = parse_error("SFATAL-DE\0VFATAL\0C28P01\0Mx\0\0"sv);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "FATAL");
  const auto old = parse_error("SFATAL\0C28P01\0Rauth.c\0Mx\0\0"sv);  // pre-9.6: no 'V'
  ASSERT_TRUE(old);
  EXPECT_EQ(old->severity, "FATAL");
}

TEST(Error, ParseMalformed) {
  EXPECT_FALSE(parse_error(""sv));                 // no terminator
  EXPECT_FALSE(parse_error("SERROR\0"sv));         // no terminator
  EXPECT_FALSE(parse_error("SERROR"sv));           // unterminated value
  EXPECT_FALSE(parse_error("SERROR\0\0extra"sv));  // trailing bytes
  EXPECT_TRUE(parse_error("\0"sv));                // no fields at all is structurally fine
}

TEST(ReadyForQuery, Encode) {
  for (char status : {'I', 'T', 'E'}) {
    std::string out;
    encode_ready_for_query(out, status);
    EXPECT_EQ(out, std::string("Z\0\0\0\x05", 5) + status);
    const Frame f = one_frame(out);
    EXPECT_EQ(f.type, 'Z');
    EXPECT_EQ(f.body, std::string(1, status));
  }
}

TEST(Auth, OkAndCleartext) {
  std::string out;
  encode_auth_ok(out);
  EXPECT_EQ(out, "R\0\0\0\x08\0\0\0\0"sv);
  auto a = parse_auth(one_frame(out).body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 0);
  EXPECT_TRUE(a->data.empty());

  out.clear();
  encode_auth_cleartext(out);
  a = parse_auth(one_frame(out).body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 3);
}

TEST(Auth, Md5) {
  const std::uint8_t salt[4] = {0x01, 0x00, 0xff, 0x7f};
  std::string out;
  encode_auth_md5(out, salt);
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'R');
  const auto a = parse_auth(f.body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 5);
  EXPECT_EQ(a->data, "\x01\0\xff\x7f"sv);
}

TEST(Auth, Sasl) {
  std::string out;
  encode_auth_sasl(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  const auto a = parse_auth(one_frame(out).body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 10);
  EXPECT_EQ(a->data, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"sv);
}

TEST(Auth, SaslContinueAndFinal) {
  std::string out;
  encode_auth_sasl_continue(out, "r=abc,s=xyz,i=4096");
  auto a = parse_auth(one_frame(out).body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 11);
  EXPECT_EQ(a->data, "r=abc,s=xyz,i=4096");

  out.clear();
  encode_auth_sasl_final(out, "v=sig");
  a = parse_auth(one_frame(out).body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 12);
  EXPECT_EQ(a->data, "v=sig");
}

TEST(Auth, ParseMalformed) {
  EXPECT_FALSE(parse_auth(""sv));
  EXPECT_FALSE(parse_auth("\0\0\0"sv));
  EXPECT_FALSE(parse_auth("\0\0\0\0x"sv));                       // Ok with trailing bytes
  EXPECT_FALSE(parse_auth("\0\0\0\x05\x01\x02\x03"sv));          // md5 salt too short
  EXPECT_FALSE(parse_auth("\0\0\0\x05\x01\x02\x03\x04\x05"sv));  // md5 salt too long
  EXPECT_FALSE(parse_auth("\0\0\0\x0a"sv));                      // SASL: empty list, no terminator
  EXPECT_FALSE(parse_auth("\0\0\0\x0aSCRAM-SHA-256\0"sv));       // SASL: no final empty string
  EXPECT_FALSE(parse_auth("\0\0\0\x0aSCRAM"sv));                 // SASL: unterminated name
  EXPECT_FALSE(parse_auth("\0\0\0\x0aSCRAM-SHA-256\0\0x"sv));    // SASL: trailing bytes
}

TEST(ParameterStatus, EncodeParseRoundTrip) {
  std::string out;
  encode_parameter_status(out, "server_version", "16.2");
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'S');
  const auto p = parse_parameter_status(f.body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->first, "server_version");
  EXPECT_EQ(p->second, "16.2");
  EXPECT_FALSE(parse_parameter_status("a\0"sv));
  EXPECT_FALSE(parse_parameter_status("a\0b"sv));
  EXPECT_FALSE(parse_parameter_status("a\0b\0c"sv));
}

TEST(BackendKeyData, Encode) {
  std::string out;
  encode_backend_key_data(out, CancelKey{42, -1});
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'K');
  EXPECT_EQ(f.body, "\0\0\0\x2a\xff\xff\xff\xff"sv);
  const auto k = parse_cancel(f.body);  // same layout as a CancelRequest body
  ASSERT_TRUE(k);
  EXPECT_EQ(*k, (CancelKey{42, -1}));
}

TEST(NegotiateProtocolVersion, Encode) {
  std::string out;
  encode_negotiate_protocol_version(out, 0, {"_pq_.a", "_pq_.b"});
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'v');
  Reader r(f.body);
  EXPECT_EQ(r.i32(), 0);
  EXPECT_EQ(r.i32(), 2);
  EXPECT_EQ(r.cstring(), "_pq_.a");
  EXPECT_EQ(r.cstring(), "_pq_.b");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
}

// ---- Frontend messages ----

TEST(Query, Encode) {
  std::string out;
  encode_query(out, "select 1");
  EXPECT_EQ(out, "Q\0\0\0\x0dselect 1\0"sv);
  const Frame f = one_frame(out);
  Reader r(f.body);
  EXPECT_EQ(r.cstring(), "select 1");
  EXPECT_TRUE(r.at_end());
}

TEST(Terminate, Encode) {
  std::string out;
  encode_terminate(out);
  EXPECT_EQ(out, "X\0\0\0\x04"sv);
  EXPECT_EQ(one_frame(out).type, 'X');
}

TEST(Password, Encode) {
  std::string out;
  encode_password(out, "md5abc");
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'p');
  EXPECT_EQ(f.body, "md5abc\0"sv);
}

TEST(Sasl, InitialRoundTrip) {
  std::string out;
  encode_sasl_initial(out, "SCRAM-SHA-256", "n,,n=,r=abc");
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'p');
  const auto s = parse_sasl_initial(f.body);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(s->data, "n,,n=,r=abc");
}

TEST(Sasl, InitialWithoutData) {
  const auto s = parse_sasl_initial("SCRAM-SHA-256\0\xff\xff\xff\xff"sv);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mechanism, "SCRAM-SHA-256");
  EXPECT_TRUE(s->data.empty());
}

TEST(Sasl, InitialMalformed) {
  EXPECT_FALSE(parse_sasl_initial(""sv));
  EXPECT_FALSE(parse_sasl_initial("SCRAM-SHA-256"sv));        // unterminated
  EXPECT_FALSE(parse_sasl_initial("SCRAM-SHA-256\0\0\0"sv));  // short length
  EXPECT_FALSE(parse_sasl_initial("\0\0\0\0\0"sv));           // empty mechanism
  EXPECT_FALSE(
      parse_sasl_initial("M\0\0\0\0\x05"
                         "abcd"sv));  // data shorter
  EXPECT_FALSE(
      parse_sasl_initial("M\0\0\0\0\x03"
                         "abcd"sv));                           // data longer
  EXPECT_FALSE(parse_sasl_initial("M\0\xff\xff\xff\xfe"sv));   // length -2
  EXPECT_FALSE(parse_sasl_initial("M\0\xff\xff\xff\xffx"sv));  // -1 with data
  EXPECT_FALSE(parse_sasl_initial("M\0\x7f\xff\xff\xff"sv));   // huge length
}

TEST(Sasl, ResponseEncode) {
  std::string out;
  encode_sasl_response(out, "c=biws,r=x,p=y");
  const Frame f = one_frame(out);
  EXPECT_EQ(f.type, 'p');
  EXPECT_EQ(f.body, "c=biws,r=x,p=y");
}

TEST(Encoders, AppendSoSeveralMessagesBatch) {
  std::string out;
  encode_auth_ok(out);
  encode_parameter_status(out, "client_encoding", "UTF8");
  encode_backend_key_data(out, CancelKey{1, 2});
  encode_ready_for_query(out, 'I');
  std::string_view rest = out;
  std::string types;
  while (!rest.empty()) {
    const auto d = decode_frame(rest);
    ASSERT_EQ(d.status, DecodeStatus::kMessage);
    types.push_back(d.frame.type);
    rest.remove_prefix(d.frame.size);
  }
  EXPECT_EQ(types, "RSKZ");
}

// Every parser, fed every prefix of garbage, must return without crashing.
TEST(Parsers, GarbageNeverCrashes) {
  const std::string samples[] = {std::string("\0\0\0\x0a\xff\xff", 6),
                                 std::string(300, '\0'),
                                 std::string(300, '\xff'),
                                 "user\0x\0database"s,
                                 "SCRAM\0\x7f\xff\xff\xff"s,
                                 "S\0V\0C\0M\0"s};
  for (const std::string& s : samples) {
    for (std::size_t n = 0; n <= s.size(); ++n) {
      const std::string_view p = std::string_view(s).substr(0, n);
      parse_startup(kProtocolV3, p);
      parse_cancel(p);
      parse_error(p);
      parse_auth(p);
      parse_sasl_initial(p);
      parse_parameter_status(p);
    }
  }
}

}  // namespace
}  // namespace pglane::protocol
