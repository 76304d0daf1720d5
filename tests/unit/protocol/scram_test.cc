#include "protocol/scram.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pglane::protocol {
namespace {

// RFC 7677 section 3, SCRAM-SHA-256 example.
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramVerifier rfc_verifier() {
  const auto v =
      parse_scram_verifier(make_scram_verifier("pencil", 4096, *base64_decode(kSaltB64)));
  EXPECT_TRUE(v);
  return v.value_or(ScramVerifier{});
}

TEST(ScramRfc7677, Client) {
  ScramClient client("pencil");
  client.set_nonce_for_test(std::string(kClientNonce), "user");
  EXPECT_EQ(client.client_first(), kClientFirst);
  const auto final_msg = client.handle_server_first(kServerFirst);
  ASSERT_TRUE(final_msg);
  EXPECT_EQ(*final_msg, kClientFinal);
  EXPECT_TRUE(client.verify_server_final(kServerFinal));
}

TEST(ScramRfc7677, Server) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_test(std::string(kServerNonce));
  const auto first = server.handle_client_first("SCRAM-SHA-256", kClientFirst);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, kServerFirst);
  const auto final_msg = server.handle_client_final(kClientFinal);
  ASSERT_TRUE(final_msg);
  EXPECT_EQ(*final_msg, kServerFinal);
}

TEST(ScramRfc7677, ServerRejectsTamperedProof) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_test(std::string(kServerNonce));
  ASSERT_TRUE(server.handle_client_first("SCRAM-SHA-256", kClientFirst));
  std::string tampered(kClientFinal);
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(server.handle_client_final(tampered));
}

TEST(ScramRfc7677, ClientRejectsWrongServerSignature) {
  ScramClient client("pencil");
  client.set_nonce_for_test(std::string(kClientNonce), "user");
  client.client_first();
  ASSERT_TRUE(client.handle_server_first(kServerFirst));
  EXPECT_FALSE(client.verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  EXPECT_FALSE(client.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"));
  EXPECT_FALSE(client.verify_server_final("v="));
  EXPECT_FALSE(client.verify_server_final("e=invalid-proof"));
  EXPECT_FALSE(client.verify_server_final(""));
  EXPECT_TRUE(client.verify_server_final(kServerFinal));
}

// A full exchange between our client and our server; returns whether both sides accepted.
bool exchange(std::string_view stored_password, std::string client_password) {
  ScramServer server(*parse_scram_verifier(make_scram_verifier(stored_password)));
  ScramClient client(std::move(client_password));
  const std::string first = client.client_first();
  const auto server_first = server.handle_client_first("SCRAM-SHA-256", first);
  if (!server_first) {
    return false;
  }
  const auto client_final = client.handle_server_first(*server_first);
  if (!client_final) {
    return false;
  }
  const auto server_final = server.handle_client_final(*client_final);
  return server_final && client.verify_server_final(*server_final);
}

TEST(Scram, RoundTrip) {
  EXPECT_TRUE(exchange("s3cret, with = signs", "s3cret, with = signs"));
}

TEST(Scram, EmptyPasswordRoundTrip) {
  EXPECT_TRUE(exchange("", ""));
}

TEST(Scram, WrongPasswordRejected) {
  EXPECT_FALSE(exchange("right", "wrong"));
}

TEST(Scram, ClientFirstShape) {
  ScramClient client("pw");
  const std::string first = client.client_first();
  ASSERT_TRUE(first.starts_with("n,,n=,r="));
  EXPECT_EQ(first.size(), 8u + 32u);        // 24 random bytes in base64
  EXPECT_EQ(client.client_first(), first);  // stable if asked again
  EXPECT_NE(ScramClient("pw").client_first(), first);
}

TEST(Scram, ServerNonceIsClientNoncePlus24Chars) {
  ScramServer server(rfc_verifier());
  const auto first = server.handle_client_first("SCRAM-SHA-256", "y,,n=,r=abc");
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->starts_with("r=abc"));
  const std::size_t comma = first->find(',');
  EXPECT_EQ(comma, 2u + 3u + 24u);
  EXPECT_EQ(first->substr(comma), ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
}

TEST(Scram, ServerAcceptsYFlagWithMatchingBinding) {
  ScramServer server(*parse_scram_verifier(make_scram_verifier("pw")));
  ScramClient client("pw");
  std::string first = client.client_first();
  first[0] = 'y';
  const auto server_first = server.handle_client_first("SCRAM-SHA-256", first);
  ASSERT_TRUE(server_first);
  auto client_final = client.handle_server_first(*server_first);
  ASSERT_TRUE(client_final);
  // The client sent "c=biws" (n,,) but the server saw "y,,": the binding must not match.
  EXPECT_FALSE(server.handle_client_final(*client_final));
}

TEST(Scram, ServerRejectsMalformedClientFirst) {
  for (std::string_view bad :
       {"", "n,,", "n,", "x,,n=,r=abc", "p=tls-server-end-point,,n=,r=abc", "n,a=bob,n=,r=abc",
        "n,,r=abc", "n,,n=", "n,,n=,r=", "n,,n=,r=a,b", "n,,m=ext,n=,r=abc", "n,,n=,x=1,r=abc",
        "n,,n=,r=ab\x7f", "n,,n=,r=abc,", "n,,n=,r=abc,=x", "n,,n=user"}) {
    ScramServer server(rfc_verifier());
    EXPECT_FALSE(server.handle_client_first("SCRAM-SHA-256", bad)) << bad;
  }
}

TEST(Scram, ServerRejectsMalformedClientFinal) {
  const std::string nonce = std::string(kClientNonce) + std::string(kServerNonce);
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  for (std::string bad :
       {std::string(""), "c=biws,r=" + nonce, "c=biws," + proof, "r=" + nonce + "," + proof,
        "c=eSws,r=" + nonce + "," + proof, "c=biws,r=" + nonce + "x," + proof,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, "c=biws,r=" + nonce + ",p=!!!!",
        "c=biws,r=" + nonce + ",p=AAAA", "c=biws,r=" + nonce + ",x=1," + proof,
        "c=biws,r=" + nonce + "," + proof + ","}) {
    ScramServer server(rfc_verifier());
    server.set_nonce_for_test(std::string(kServerNonce));
    ASSERT_TRUE(server.handle_client_first("SCRAM-SHA-256", kClientFirst));
    EXPECT_FALSE(server.handle_client_final(bad)) << bad;
  }
}

TEST(Scram, ServerOutOfOrder) {
  {
    ScramServer server(rfc_verifier());
    EXPECT_FALSE(server.handle_client_final(kClientFinal));  // final before first
    EXPECT_FALSE(
        server.handle_client_first("SCRAM-SHA-256", kClientFirst));  // and the exchange is over
  }
  {
    ScramServer server(rfc_verifier());
    server.set_nonce_for_test(std::string(kServerNonce));
    ASSERT_TRUE(server.handle_client_first("SCRAM-SHA-256", kClientFirst));
    EXPECT_FALSE(server.handle_client_first("SCRAM-SHA-256", kClientFirst));  // first twice
    EXPECT_FALSE(server.handle_client_final(kClientFinal));  // failure ends the exchange
  }
  {
    ScramServer server(rfc_verifier());
    server.set_nonce_for_test(std::string(kServerNonce));
    ASSERT_TRUE(server.handle_client_first("SCRAM-SHA-256", kClientFirst));
    ASSERT_TRUE(server.handle_client_final(kClientFinal));
    EXPECT_FALSE(server.handle_client_final(kClientFinal));  // replay
  }
  {
    ScramServer server(rfc_verifier());
    ASSERT_FALSE(server.handle_client_first("SCRAM-SHA-256", "garbage"));
    EXPECT_FALSE(server.handle_client_first("SCRAM-SHA-256", kClientFirst));  // no second chance
  }
}

TEST(Scram, MockVerifierLooksNormalButFails) {
  ScramVerifier mock{4096, random_bytes(16), random_bytes(32), random_bytes(32)};
  ScramServer server(mock);
  ScramClient client("guess");
  const auto server_first = server.handle_client_first("SCRAM-SHA-256", client.client_first());
  ASSERT_TRUE(server_first);
  const auto client_final = client.handle_server_first(*server_first);
  ASSERT_TRUE(client_final);
  EXPECT_FALSE(server.handle_client_final(*client_final));
}

std::optional<std::string> client_answer(std::string_view server_first,
                                         int max_iterations = 100000) {
  ScramClient client("pencil", max_iterations);
  client.set_nonce_for_test(std::string(kClientNonce), "user");
  client.client_first();
  return client.handle_server_first(server_first);
}

TEST(Scram, ClientRejectsBadServerFirst) {
  const std::string salt = ",s=W22ZaJ0SNY7soEsUEjb6gQ==";
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvY";
  ASSERT_TRUE(client_answer(nonce + salt + ",i=1"));
  for (std::string bad : {
           std::string(""),
           "r=rOprNGfwEbeRWgbNEkqO" + salt + ",i=4096",         // empty server part
           "r=" + salt + ",i=4096",                             // empty nonce
           "r=rOprNGfwEbeRWgbNEk" + salt + ",i=4096",           // shorter than ours
           "r=XOprNGfwEbeRWgbNEkqO%hvY" + salt + ",i=4096",     // different prefix
           "r=rOprNGfwEbeRWgbNEkqO%h\x01Y" + salt + ",i=4096",  // unprintable
           nonce + ",s=,i=4096",                                // empty salt
           nonce + ",s=!!!!,i=4096",                            // undecodable salt
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",         // bad padding
           nonce + salt + ",i=0",                               // iterations < 1
           nonce + salt + ",i=-1",
           nonce + salt + ",i=+5",
           nonce + salt + ",i=100001",                // > max_iterations
           nonce + salt + ",i=99999999999999999999",  // overflow
           nonce + salt + ",i=",
           nonce + salt + ",i=12x",
           nonce + salt,                         // missing i
           "m=ext," + nonce + salt + ",i=4096",  // mandatory extension
           nonce + ",i=4096" + salt,             // out of order
       }) {
    EXPECT_FALSE(client_answer(bad)) << bad;
  }
  EXPECT_FALSE(client_answer(nonce + salt + ",i=5000", 4096));
  EXPECT_TRUE(client_answer(nonce + salt + ",i=4096", 4096));
}

TEST(Scram, ClientOutOfOrder) {
  {
    ScramClient client("pencil");
    EXPECT_FALSE(client.handle_server_first(kServerFirst));  // before client_first()
    EXPECT_FALSE(client.verify_server_final(kServerFinal));
  }
  {
    ScramClient client("pencil");
    client.set_nonce_for_test(std::string(kClientNonce), "user");
    client.client_first();
    EXPECT_FALSE(client.verify_server_final(kServerFinal));  // before server-first
    ASSERT_TRUE(client.handle_server_first(kServerFirst));
    EXPECT_FALSE(client.handle_server_first(kServerFirst));  // twice
    EXPECT_TRUE(client.verify_server_final(kServerFinal));
  }
}

TEST(ScramVerifierText, RoundTrip) {
  const std::string text = make_scram_verifier("pencil", 4096, *base64_decode(kSaltB64));
  // StoredKey and ServerKey for the RFC 7677 password and salt, as PostgreSQL would store them.
  EXPECT_EQ(text,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
  const auto v = parse_scram_verifier(text);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 4096);
  EXPECT_EQ(base64_encode(v->salt), kSaltB64);
  EXPECT_EQ(v->stored_key.size(), 32u);
  EXPECT_EQ(v->server_key.size(), 32u);
}

TEST(ScramVerifierText, RandomSalt) {
  const auto a = parse_scram_verifier(make_scram_verifier("pw"));
  const auto b = parse_scram_verifier(make_scram_verifier("pw"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->salt.size(), 16u);
  EXPECT_NE(a->salt, b->salt);
  EXPECT_EQ(a->iterations, 4096);
}

TEST(ScramVerifierText, Malformed) {
  const std::string keys =
      "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
  ASSERT_TRUE(parse_scram_verifier("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + keys));
  for (std::string bad : {
           std::string(""),
           std::string("md5abcdef"),
           "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + keys,
           "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$" + keys,
           "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==$" + keys,
           "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$" + keys,
           "SCRAM-SHA-256$4096:$" + keys,
           "SCRAM-SHA-256$4096W22ZaJ0SNY7soEsUEjb6gQ==$" + keys,
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA"),
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + keys.substr(0, 44),
       }) {
    EXPECT_FALSE(parse_scram_verifier(bad)) << bad;
  }
  EXPECT_EQ(make_scram_verifier("pw", 0), "");
}

TEST(Md5, KnownValues) {
  // echo -n 'passworduser' | md5sum
  EXPECT_EQ(md5_stored("password", "user"), "md54d45974e13472b5a0be3533de4666414");
  // echo -n 'pencilpostgres' | md5sum
  EXPECT_EQ(md5_stored("pencil", "postgres"), "md54c21b325d75177d5e9b9789a50ab0c9c");
  EXPECT_EQ(md5_stored("", ""), "md5d41d8cd98f00b204e9800998ecf8427e");
  // printf '4c21b325d75177d5e9b9789a50ab0c9c\x01\x02\x03\x04' | md5sum
  const std::uint8_t salt[4] = {1, 2, 3, 4};
  EXPECT_EQ(md5_password_response("pencil", "postgres", salt),
            "md5dba33b405438ce4ca5423846a9bffead");
  EXPECT_EQ(md5_response_from_stored("md54c21b325d75177d5e9b9789a50ab0c9c", salt),
            "md5dba33b405438ce4ca5423846a9bffead");
  EXPECT_EQ(md5_response_from_stored("4c21b325d75177d5e9b9789a50ab0c9c", salt), "");
}

TEST(Base64, KnownValues) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("n,,"), "biws");
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64_decode("+/+/"), "\xfb\xff\xbf");
}

TEST(Base64, RoundTripAllByteValues) {
  std::string raw;
  for (int i = 0; i < 256; ++i) {
    raw.push_back(static_cast<char>(i));
    EXPECT_EQ(base64_decode(base64_encode(raw)), raw);
  }
}

// ---- SASLprep (RFC 4013 section 3 examples, and PostgreSQL's fallbacks) ----

TEST(SaslPrep, Rfc4013Examples) {
  EXPECT_EQ(saslprep_password("I\xC2\xAD"
                              "X"),
            "IX");                                     // SOFT HYPHEN mapped to nothing
  EXPECT_EQ(saslprep_password("\xC2\xAA"), "a");       // FEMININE ORDINAL -> NFKC "a"
  EXPECT_EQ(saslprep_password("\xE2\x85\xA8"), "IX");  // ROMAN NUMERAL NINE
  EXPECT_EQ(saslprep_password("a\xC2\xA0"
                              "b"),
            "a b");                                                // NO-BREAK SPACE -> space
  EXPECT_EQ(saslprep_password("caf\x65\xCC\x81"), "caf\xC3\xA9");  // NFD -> NFC
}

TEST(SaslPrep, AsciiAndRefusedInputAreUsedAsTheyAre) {
  EXPECT_EQ(saslprep_password("user"), "user");
  EXPECT_EQ(saslprep_password("a\x07"
                              "b"),
            "a\x07"
            "b");                                        // ASCII: PostgreSQL skips checks
  EXPECT_EQ(saslprep_password("\xff\xfe"), "\xff\xfe");  // not UTF-8
  EXPECT_EQ(saslprep_password("x\xC2\x85"
                              "y"),
            "x\xC2\x85"
            "y");  // prohibited control char
}

TEST(SaslPrep, VerifierAndClientAgreeOnEquivalentPasswords) {
  const std::string salt = "0123456789abcdef";
  EXPECT_EQ(make_scram_verifier("I\xC2\xAD"
                                "X",
                                4096, salt),
            make_scram_verifier("IX", 4096, salt));
  // A client typing the decomposed form logs in against a verifier made from the composed one.
  ScramServer server(*parse_scram_verifier(make_scram_verifier("caf\xC3\xA9")));
  ScramClient client("caf\x65\xCC\x81");
  auto first = server.handle_client_first("SCRAM-SHA-256", client.client_first());
  ASSERT_TRUE(first);
  auto final_msg = client.handle_server_first(*first);
  ASSERT_TRUE(final_msg);
  EXPECT_TRUE(server.handle_client_final(*final_msg));
}

// ---- Channel binding (SCRAM-SHA-256-PLUS) ----

// One whole exchange; the client binds to `client_cb` (empty: none) and selects `mechanism`.
bool bound_exchange(std::string server_cb, std::string client_cb, std::string_view mechanism,
                    char flag = 0) {
  const std::string verifier = make_scram_verifier("pw");
  ScramServer server(*parse_scram_verifier(verifier), std::move(server_cb));
  ScramClient client("pw");
  if (!client_cb.empty()) {
    client.set_channel_binding(std::move(client_cb));
  }
  std::string first = client.client_first();
  if (flag != 0) {
    first[0] = flag;
  }
  auto server_first = server.handle_client_first(mechanism, first);
  if (!server_first) {
    return false;
  }
  auto final_msg = client.handle_server_first(*server_first);
  return final_msg && server.handle_client_final(*final_msg).has_value();
}

TEST(ScramPlus, MechanismsOfferedOnlyWithBinding) {
  EXPECT_EQ(ScramServer(ScramVerifier{}).mechanisms(), std::vector<std::string>{"SCRAM-SHA-256"});
  EXPECT_EQ(ScramServer(ScramVerifier{}, "cb").mechanisms(),
            (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
}

TEST(ScramPlus, BoundExchangeSucceedsOnlyWithTheSameBinding) {
  EXPECT_TRUE(bound_exchange("cert-hash", "cert-hash", "SCRAM-SHA-256-PLUS"));
  EXPECT_FALSE(bound_exchange("cert-hash", "other-hash", "SCRAM-SHA-256-PLUS"));  // MITM
  EXPECT_FALSE(bound_exchange("", "cert-hash", "SCRAM-SHA-256-PLUS"));            // not offered
  EXPECT_FALSE(bound_exchange("cert-hash", "cert-hash", "SCRAM-SHA-256"));  // p= without -PLUS
}

TEST(ScramPlus, UnboundClientsAndDowngrades) {
  // A client without channel binding may still use plain SCRAM over TLS.
  EXPECT_TRUE(bound_exchange("cert-hash", "", "SCRAM-SHA-256"));
  // -PLUS selected without binding data.
  EXPECT_FALSE(bound_exchange("cert-hash", "", "SCRAM-SHA-256-PLUS"));
  // "y": the client supports binding but did not see -PLUS offered; we offered it: downgrade.
  EXPECT_FALSE(bound_exchange("cert-hash", "", "SCRAM-SHA-256", 'y'));
  EXPECT_FALSE(bound_exchange("", "", "SCRAM-SHA-256", 'y'));  // c=biws no longer matches "y,,"
  EXPECT_FALSE(bound_exchange("", "", "SCRAM-SHA-1"));
}

// ---- Logging in with a client's keys (pass-through) ----

TEST(ScramPassThrough, ServerRecoversKeysThatLogInElsewhere) {
  const std::string verifier_text = make_scram_verifier("secret");
  const ScramVerifier verifier = *parse_scram_verifier(verifier_text);
  // The client logs in to pglane...
  ScramServer gateway(verifier);
  ScramClient client("secret");
  auto first = gateway.handle_client_first("SCRAM-SHA-256", client.client_first());
  ASSERT_TRUE(first);
  auto final_msg = client.handle_server_first(*first);
  ASSERT_TRUE(final_msg);
  ASSERT_TRUE(gateway.handle_client_final(*final_msg));
  ASSERT_TRUE(gateway.client_keys());
  // ... and pglane logs in to a server holding the same verifier with the recovered keys.
  ScramServer server(verifier);
  ScramClient relay(*gateway.client_keys());
  auto server_first = server.handle_client_first("SCRAM-SHA-256", relay.client_first());
  ASSERT_TRUE(server_first);
  auto relay_final = relay.handle_server_first(*server_first);
  ASSERT_TRUE(relay_final);
  auto server_final = server.handle_client_final(*relay_final);
  ASSERT_TRUE(server_final);
  EXPECT_TRUE(relay.verify_server_final(*server_final));
}

TEST(ScramPassThrough, KeysDoNotFitAnotherVerifier) {
  const ScramVerifier mine = *parse_scram_verifier(make_scram_verifier("secret"));
  ScramKeys keys{mine.iterations, mine.salt, std::string(32, 'k'), mine.server_key};
  // The server's verifier has another salt (the password was set again there).
  ScramServer server(*parse_scram_verifier(make_scram_verifier("secret")));
  ScramClient relay(keys);
  auto server_first = server.handle_client_first("SCRAM-SHA-256", relay.client_first());
  ASSERT_TRUE(server_first);
  EXPECT_FALSE(relay.handle_server_first(*server_first));
  EXPECT_TRUE(relay.keys_mismatch());
  // A wrong proof gives no keys.
  ScramServer gateway(mine);
  ScramClient wrong("not-secret");
  auto first = gateway.handle_client_first("SCRAM-SHA-256", wrong.client_first());
  ASSERT_TRUE(first);
  EXPECT_FALSE(gateway.handle_client_final(*wrong.handle_server_first(*first)));
  EXPECT_FALSE(gateway.client_keys());
}

TEST(Base64, RejectsMalformed) {
  for (std::string_view bad : {"Z", "Zg", "Zg=", "Zg===", "====", "Z===", "Zg=A", "Zm9v\n", " Zm9v",
                               "Zm9v====", "Zm-v", "Zm_v", "Z=g="}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST(ConstantTimeEqual, Basics) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST(RandomBytes, SizeAndVariety) {
  EXPECT_EQ(random_bytes(0), "");
  EXPECT_EQ(random_bytes(18).size(), 18u);
  EXPECT_NE(random_bytes(16), random_bytes(16));
}

}  // namespace
}  // namespace pglane::protocol
