// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it (docs 55.3.1), plus md5 password
// hashing. Pure computation: no sockets, OpenSSL libcrypto only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pglane::protocol {

// A stored verifier, "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
struct ScramVerifier {
  int iterations = 0;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw 32 bytes
  std::string server_key;  // raw 32 bytes
};
std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);
// Builds a verifier for `password` after SASLprep, as PostgreSQL does. `salt` empty means 16
// random bytes.
std::string make_scram_verifier(std::string_view password, int iterations = 4096,
                                std::string_view salt = {});

// RFC 4013 SASLprep of a password, as PostgreSQL's client and server both apply it before
// hashing (src/common/saslprep.c): pure ASCII is used as it is; otherwise the string is mapped,
// NFKC-normalised and checked for prohibited and unassigned code points. Input that is not valid
// UTF-8 or fails a check is used as raw bytes, as PostgreSQL falls back to them.
std::string saslprep_password(std::string_view password);

// What a SCRAM login needs instead of the password: the keys of the verifier, and the ClientKey
// recovered from a client's proof (RFC 5802 section 3: ClientKey = ClientProof XOR
// ClientSignature). With them pglane logs in to a server that stores the same verifier, as
// PgBouncer does, so the gateway never holds a plaintext password.
struct ScramKeys {
  int iterations = 0;
  std::string salt;        // raw bytes
  std::string client_key;  // raw 32 bytes; as good as the password for logging in
  std::string server_key;  // raw 32 bytes
  ~ScramKeys();            // wipes the keys
};

// The channel-binding type PostgreSQL supports (RFC 5929): a hash of the server's certificate.
inline constexpr std::string_view kTlsServerEndPoint = "tls-server-end-point";

// Server side of one SCRAM exchange.
class ScramServer {
 public:
  // `verifier` may be a mock (for unknown users) so the exchange looks identical on the wire.
  // `channel_binding` is the tls-server-end-point data of the TLS connection the exchange runs
  // on, empty when it is not TLS: then SCRAM-SHA-256-PLUS is neither offered nor accepted.
  explicit ScramServer(ScramVerifier verifier, std::string channel_binding = {});
  // The mechanisms to offer, in PostgreSQL's order (-PLUS first when channel binding exists).
  std::vector<std::string> mechanisms() const;
  // client-first-message -> server-first-message; nullopt on a malformed message, or when the
  // gs2 header does not agree with `mechanism` and what was offered (RFC 5802 section 6: a client
  // that says "y" to a server offering -PLUS is being downgraded).
  std::optional<std::string> handle_client_first(std::string_view mechanism,
                                                 std::string_view client_first);
  // client-final-message -> server-final-message ("v=...") when the proof verifies; nullopt when
  // the message is malformed, the nonce or channel binding does not match, or the proof is wrong.
  std::optional<std::string> handle_client_final(std::string_view client_final);
  // After a successful handle_client_final: the client's keys, for logging in to servers.
  const std::optional<ScramKeys>& client_keys() const { return client_keys_; }
  // Tests only: use `server_nonce` instead of 18 random bytes (for RFC 7677 test vectors).
  void set_nonce_for_test(std::string server_nonce);

 private:
  ScramVerifier verifier_;
  std::string channel_binding_;
  std::optional<ScramKeys> client_keys_;
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
  // `max_iterations` bounds the work a misbehaving server can make us do. The password gets
  // SASLprep.
  explicit ScramClient(std::string password, int max_iterations = 100000);
  // Logs in with a client's keys instead of a password: the server must use the same salt and
  // iteration count (its verifier is the one the keys came from), else handle_server_first fails
  // and keys_mismatch() says so.
  explicit ScramClient(ScramKeys keys);
  bool keys_mismatch() const { return keys_mismatch_; }
  // Before client_first(): bind the exchange to the TLS connection (SCRAM-SHA-256-PLUS) with its
  // tls-server-end-point data. The caller then selects "SCRAM-SHA-256-PLUS".
  void set_channel_binding(std::string data) { channel_binding_ = std::move(data); }
  std::string client_first();  // "n,,n=,r=<nonce>" ("p=tls-server-end-point,,..." when bound)
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
  std::optional<ScramKeys> keys_;
  bool keys_mismatch_ = false;
  std::string channel_binding_;
  std::string gs2_header() const;
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
