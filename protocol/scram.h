// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it (docs 55.3.1), plus md5 password
// hashing. Pure computation: no sockets, OpenSSL libcrypto only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pglane::protocol {

// A stored verifier, "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
struct ScramVerifier {
  int iterations = 0;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw 32 bytes
  std::string server_key;  // raw 32 bytes
};
std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);
// Builds a verifier for `password` (SASLprep is not applied, like PostgreSQL for non-UTF8-safe
// input it falls back to the raw bytes). `salt` empty means 16 random bytes.
std::string make_scram_verifier(std::string_view password, int iterations = 4096,
                                std::string_view salt = {});

// Server side of one SCRAM exchange.
class ScramServer {
 public:
  // `verifier` may be a mock (for unknown users) so the exchange looks identical on the wire.
  explicit ScramServer(ScramVerifier verifier);
  // client-first-message -> server-first-message; nullopt on a malformed message.
  std::optional<std::string> handle_client_first(std::string_view client_first);
  // client-final-message -> server-final-message ("v=...") when the proof verifies; nullopt when
  // the message is malformed, the nonce or channel binding does not match, or the proof is wrong.
  std::optional<std::string> handle_client_final(std::string_view client_final);
  // Tests only: use `server_nonce` instead of 18 random bytes (for RFC 7677 test vectors).
  void set_nonce_for_test(std::string server_nonce);

 private:
  ScramVerifier verifier_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::string gs2_header_;
  int state_ = 0;                  // 0 want client-first, 1 want client-final, 2 done
  std::string test_server_nonce_;  // set only by set_nonce_for_test
};

// Client side, used by pglane to log in to PostgreSQL servers.
class ScramClient {
 public:
  // `max_iterations` bounds the work a misbehaving server can make us do.
  explicit ScramClient(std::string password, int max_iterations = 100000);
  std::string client_first();  // "n,,n=,r=<nonce>"
  // server-first -> client-final; nullopt on malformed input, nonce mismatch or absurd counts.
  std::optional<std::string> handle_server_first(std::string_view server_first);
  // true when the server's signature in server-final verifies.
  bool verify_server_final(std::string_view server_final);
  // Tests only, before client_first(): use `client_nonce` instead of 24 random bytes and send
  // `user` in n= (PostgreSQL clients send it empty; RFC 7677's test vector uses "user").
  void set_nonce_for_test(std::string client_nonce, std::string_view user = {});

 private:
  std::string password_;
  int max_iterations_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
  std::string server_signature_;
};

// PostgreSQL md5 auth: "md5" + md5hex(md5hex(password + user) + salt).
std::string md5_password_response(std::string_view password, std::string_view user,
                                  const std::uint8_t salt[4]);
// Stored form "md5" + md5hex(password + user), as in pg_authid.
std::string md5_stored(std::string_view password, std::string_view user);
// Response from the stored form: "md5" + md5hex(stored_hex_without_prefix + salt).
std::string md5_response_from_stored(std::string_view stored, const std::uint8_t salt[4]);

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view b64);
// Constant-time comparison for secrets.
bool constant_time_equal(std::string_view a, std::string_view b);
// Cryptographically random bytes.
std::string random_bytes(std::size_t n);

}  // namespace pglane::protocol
