#include "protocol/scram.h"

#include <idn-free.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stringprep.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace pglane::protocol {
namespace {

constexpr std::size_t kKeySize = 32;  // SHA-256 output
constexpr std::size_t kClientNonceBytes = 24;
constexpr std::size_t kServerNonceBytes = 18;
constexpr std::size_t kDefaultSaltBytes = 16;
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

// OpenSSL wants non-null pointers even for empty inputs.
const unsigned char* bytes_of(std::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

std::string digest(const EVP_MD* md, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (EVP_Digest(bytes_of(data), data.size(), out.data(), &len, md, nullptr) != 1) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), bytes_of(key), static_cast<int>(key.size()), bytes_of(data), data.size(),
           out.data(), &len) == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a);
  for (std::size_t i = 0; i < out.size() && i < b.size(); ++i) {
    out[i] = static_cast<char>(out[i] ^ b[i]);
  }
  return out;
}

// RFC 5802 section 3: SaltedPassword = Hi(password, salt, i) (PBKDF2-HMAC-SHA-256), then
// ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey),
// ServerKey = HMAC(SaltedPassword, "Server Key").
struct Keys {
  std::string client_key;
  std::string stored_key;
  std::string server_key;
};

std::optional<Keys> derive_keys(std::string_view password, std::string_view salt, int iterations) {
  std::array<unsigned char, kKeySize> salted{};
  if (iterations < 1 || PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(bytes_of(password)),
                                          static_cast<int>(password.size()), bytes_of(salt),
                                          static_cast<int>(salt.size()), iterations, EVP_sha256(),
                                          static_cast<int>(salted.size()), salted.data()) != 1) {
    return std::nullopt;
  }
  const std::string_view salted_view(reinterpret_cast<const char*>(salted.data()), salted.size());
  Keys k;
  k.client_key = hmac_sha256(salted_view, "Client Key");
  k.stored_key = digest(EVP_sha256(), k.client_key);
  k.server_key = hmac_sha256(salted_view, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  if (k.client_key.size() != kKeySize || k.stored_key.size() != kKeySize ||
      k.server_key.size() != kKeySize) {
    return std::nullopt;
  }
  return k;
}

// A SCRAM message is a comma-separated list of "a=value" attributes (RFC 5802 section 5.1);
// no value can contain a comma (usernames escape it as "=2C").
struct Attr {
  char name;
  std::string_view value;
};

std::optional<std::vector<Attr>> split_attrs(std::string_view msg) {
  std::vector<Attr> attrs;
  while (true) {
    const std::size_t comma = msg.find(',');
    const std::string_view part = msg.substr(0, comma);
    const char n = part.empty() ? '\0' : part[0];
    const bool alpha = (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z');
    if (part.size() < 2 || !alpha || part[1] != '=') {
      return std::nullopt;
    }
    attrs.push_back(Attr{n, part.substr(2)});
    if (comma == std::string_view::npos) {
      return attrs;
    }
    msg.remove_prefix(comma + 1);
  }
}

// RFC 5802: printable = %x21-2B / %x2D-7E (visible ASCII except ',').
bool valid_nonce(std::string_view nonce) {
  if (nonce.empty()) {
    return false;
  }
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') {
      return false;
    }
  }
  return true;
}

// A positive decimal int without sign, spaces or leading '+'; nullopt on anything else.
std::optional<int> parse_positive_int(std::string_view s) {
  int v = 0;
  const char* end = s.data() + s.size();
  if (s.empty() || s[0] < '0' || s[0] > '9') {
    return std::nullopt;
  }
  const auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end || v < 1) {
    return std::nullopt;
  }
  return v;
}

// saslname escaping (RFC 5802 section 5.1): ',' -> "=2C", '=' -> "=3D".
std::string escape_saslname(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string md5_hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string raw = digest(EVP_md5(), data);
  std::string hex;
  hex.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0xf]);
  }
  return hex;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

}  // namespace

// ---- Encoding helpers ----

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');  // +1: EVP_EncodeBlock writes a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes_of(raw),
                                static_cast<int>(raw.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view b64) {
  // Strict RFC 4648 with padding: no whitespace, length a multiple of 4, '=' only at the end.
  if (b64.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t pad = 0;
  if (!b64.empty() && b64.back() == '=') {
    pad = (b64.size() >= 2 && b64[b64.size() - 2] == '=') ? 2 : 1;
  }
  std::string out;
  out.reserve(b64.size() / 4 * 3);
  std::uint32_t acc = 0;
  for (std::size_t i = 0; i < b64.size() - pad; ++i) {
    const int v = base64_value(b64[i]);
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    if (i % 4 == 3) {
      out.push_back(static_cast<char>(acc >> 16));
      out.push_back(static_cast<char>(acc >> 8));
      out.push_back(static_cast<char>(acc));
      acc = 0;
    }
  }
  if (pad == 1) {  // 3 chars left = 18 bits = 2 bytes
    out.push_back(static_cast<char>(acc >> 10));
    out.push_back(static_cast<char>(acc >> 2));
  } else if (pad == 2) {  // 2 chars left = 12 bits = 1 byte
    out.push_back(static_cast<char>(acc >> 4));
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Lengths are public (digests and proofs have fixed sizes); only the contents are secret.
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // Without a working CSPRNG every nonce and salt would be predictable; there is no safe way
    // to continue.
    std::fputs("pglane: RAND_bytes failed\n", stderr);
    std::abort();
  }
  return out;
}

ScramKeys::~ScramKeys() {
  OPENSSL_cleanse(client_key.data(), client_key.size());
  OPENSSL_cleanse(server_key.data(), server_key.size());
}

// ---- SASLprep ----

std::string saslprep_password(std::string_view password) {
  bool ascii = true;
  for (unsigned char c : password) {
    ascii = ascii && c < 0x80;
  }
  // PostgreSQL uses pure ASCII as it is (no mapping of control characters), and a password with
  // a NUL cannot be a C string.
  if (ascii || password.find('\0') != std::string_view::npos) {
    return std::string(password);
  }
  char* out = nullptr;
  const std::string in(password);
  // STRINGPREP_NO_UNASSIGNED: PostgreSQL rejects unassigned code points too (RFC 4013 stored
  // strings); libidn also rejects invalid UTF-8. Any refusal means "use the raw bytes".
  const int rc = stringprep_profile(in.c_str(), &out, "SASLprep", STRINGPREP_NO_UNASSIGNED);
  std::string result = rc == STRINGPREP_OK && out != nullptr && out[0] != '\0'
                           ? std::string(out)
                           : std::string(password);
  if (out != nullptr) {
    OPENSSL_cleanse(out, std::char_traits<char>::length(out));
    idn_free(out);  // allocated by libidn
  }
  return result;
}

// ---- Verifiers ----

std::optional<ScramVerifier> parse_scram_verifier(std::string_view text) {
  if (!text.starts_with(kVerifierPrefix)) {
    return std::nullopt;
  }
  text.remove_prefix(kVerifierPrefix.size());
  // "<iterations>:<salt>$<StoredKey>:<ServerKey>"
  const std::size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const std::size_t c1 = params.find(':');
  const std::size_t c2 = keys.find(':');
  if (c1 == std::string_view::npos || c2 == std::string_view::npos) {
    return std::nullopt;
  }
  const std::optional<int> iterations = parse_positive_int(params.substr(0, c1));
  std::optional<std::string> salt = base64_decode(params.substr(c1 + 1));
  std::optional<std::string> stored = base64_decode(keys.substr(0, c2));
  std::optional<std::string> server = base64_decode(keys.substr(c2 + 1));
  if (!iterations || !salt || salt->empty() || !stored || stored->size() != kKeySize || !server ||
      server->size() != kKeySize) {
    return std::nullopt;
  }
  return ScramVerifier{*iterations, std::move(*salt), std::move(*stored), std::move(*server)};
}

std::string make_scram_verifier(std::string_view password, int iterations, std::string_view salt) {
  const std::string salt_bytes = salt.empty() ? random_bytes(kDefaultSaltBytes) : std::string(salt);
  const std::optional<Keys> k = derive_keys(saslprep_password(password), salt_bytes, iterations);
  if (!k) {
    return {};  // iterations < 1 (or a libcrypto failure)
  }
  return std::string(kVerifierPrefix) + std::to_string(iterations) + ":" +
         base64_encode(salt_bytes) + "$" + base64_encode(k->stored_key) + ":" +
         base64_encode(k->server_key);
}

// ---- Server ----

ScramServer::ScramServer(ScramVerifier verifier, std::string channel_binding)
    : verifier_(std::move(verifier)), channel_binding_(std::move(channel_binding)) {}

std::vector<std::string> ScramServer::mechanisms() const {
  if (channel_binding_.empty()) {
    return {"SCRAM-SHA-256"};
  }
  return {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
}

void ScramServer::set_nonce_for_test(std::string server_nonce) {
  test_server_nonce_ = std::move(server_nonce);
}

std::optional<std::string> ScramServer::handle_client_first(std::string_view mechanism,
                                                            std::string_view client_first) {
  // Any failure, including a call out of order, ends the exchange.
  const bool in_order = state_ == 0;
  state_ = 2;
  if (!in_order) {
    return std::nullopt;
  }
  const bool plus = mechanism == "SCRAM-SHA-256-PLUS";
  if ((!plus && mechanism != "SCRAM-SHA-256") || (plus && channel_binding_.empty())) {
    return std::nullopt;  // a mechanism we did not offer
  }
  // gs2-header (RFC 5802 section 7), as PostgreSQL's read_client_first_message checks it:
  //  "p=tls-server-end-point,," - channel binding, only with -PLUS;
  //  "n,," - the client does not support channel binding: only without -PLUS;
  //  "y,," - the client supports it but thinks we do not: only when we did not offer it, else
  //          someone removed -PLUS from our list on the way (a downgrade).
  // An authzid ("n,a=...,") is refused, as PostgreSQL does.
  const std::string p_header = "p=" + std::string(kTlsServerEndPoint) + ",,";
  std::string_view gs2;
  if (client_first.starts_with(p_header)) {
    if (!plus) {
      return std::nullopt;
    }
    gs2 = client_first.substr(0, p_header.size());
  } else if (client_first.starts_with("n,,") && !plus) {
    gs2 = client_first.substr(0, 3);
  } else if (client_first.starts_with("y,,") && !plus && channel_binding_.empty()) {
    gs2 = client_first.substr(0, 3);
  } else {
    return std::nullopt;
  }
  const std::string_view bare = client_first.substr(gs2.size());
  // client-first-message-bare: n=<user>,r=<nonce>[,extensions]. A leading "m=" (mandatory
  // extension) fails the 'n' check. PostgreSQL ignores the user name here (it came in the
  // StartupMessage), so we do too.
  const std::optional<std::vector<Attr>> attrs = split_attrs(bare);
  if (!attrs || attrs->size() < 2 || (*attrs)[0].name != 'n' || (*attrs)[1].name != 'r' ||
      !valid_nonce((*attrs)[1].value)) {
    return std::nullopt;
  }
  const std::string server_nonce = test_server_nonce_.empty()
                                       ? base64_encode(random_bytes(kServerNonceBytes))
                                       : test_server_nonce_;
  gs2_header_ = std::string(gs2);
  client_first_bare_ = std::string(bare);
  nonce_ = std::string((*attrs)[1].value) + server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = 1;
  return server_first_;
}

std::optional<std::string> ScramServer::handle_client_final(std::string_view client_final) {
  const bool in_order = state_ == 1;
  state_ = 2;
  if (!in_order) {
    return std::nullopt;
  }
  // client-final-message: c=<b64(gs2-header)>,r=<nonce>,p=<proof>. We accept exactly these
  // three attributes in this order; libpq and the common drivers send nothing else.
  const std::optional<std::vector<Attr>> attrs = split_attrs(client_final);
  if (!attrs || attrs->size() != 3 || (*attrs)[0].name != 'c' || (*attrs)[1].name != 'r' ||
      (*attrs)[2].name != 'p') {
    return std::nullopt;
  }
  // c= is the gs2 header followed, for "p=", by the channel-binding data of this connection.
  const std::string binding =
      gs2_header_.starts_with("p=") ? gs2_header_ + channel_binding_ : gs2_header_;
  if (!constant_time_equal((*attrs)[0].value, base64_encode(binding)) ||
      (*attrs)[1].value != nonce_) {
    return std::nullopt;
  }
  const std::optional<std::string> proof = base64_decode((*attrs)[2].value);
  if (!proof || proof->size() != kKeySize) {
    return std::nullopt;
  }
  const std::string_view without_proof =
      client_final.substr(0, client_final.size() - (*attrs)[2].value.size() - 3);  // ",p="
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); it is right iff H(ClientKey)
  // equals the StoredKey we hold.
  const std::string client_key = xor_bytes(*proof, hmac_sha256(verifier_.stored_key, auth_message));
  if (!constant_time_equal(digest(EVP_sha256(), client_key), verifier_.stored_key)) {
    return std::nullopt;
  }
  client_keys_ = ScramKeys{verifier_.iterations, verifier_.salt, client_key, verifier_.server_key};
  return "v=" + base64_encode(hmac_sha256(verifier_.server_key, auth_message));
}

// ---- Client ----

ScramClient::ScramClient(std::string password, int max_iterations)
    : password_(saslprep_password(password)), max_iterations_(max_iterations) {
  OPENSSL_cleanse(password.data(), password.size());
}

ScramClient::ScramClient(ScramKeys keys)
    : max_iterations_(keys.iterations), keys_(std::move(keys)) {}

void ScramClient::set_nonce_for_test(std::string client_nonce, std::string_view user) {
  client_nonce_ = std::move(client_nonce);
  client_first_bare_ = "n=" + escape_saslname(user) + ",r=" + client_nonce_;
}

std::string ScramClient::client_first() {
  if (client_first_bare_.empty()) {
    client_nonce_ = base64_encode(random_bytes(kClientNonceBytes));
    // The user name is sent empty: PostgreSQL takes it from the StartupMessage.
    client_first_bare_ = "n=,r=" + client_nonce_;
  }
  return gs2_header() + client_first_bare_;
}

std::string ScramClient::gs2_header() const {
  return channel_binding_.empty() ? std::string("n,,")
                                  : "p=" + std::string(kTlsServerEndPoint) + ",,";
}

std::optional<std::string> ScramClient::handle_server_first(std::string_view server_first) {
  if (client_first_bare_.empty() || !auth_message_.empty()) {
    return std::nullopt;  // client_first() not sent yet, or already answered
  }
  // server-first-message: r=<client nonce + server nonce>,s=<salt b64>,i=<count>[,ext]
  const std::optional<std::vector<Attr>> attrs = split_attrs(server_first);
  if (!attrs || attrs->size() < 3 || (*attrs)[0].name != 'r' || (*attrs)[1].name != 's' ||
      (*attrs)[2].name != 'i') {
    return std::nullopt;
  }
  const std::string_view nonce = (*attrs)[0].value;
  if (!valid_nonce(nonce) || nonce.size() <= client_nonce_.size() ||
      !nonce.starts_with(client_nonce_)) {
    return std::nullopt;
  }
  const std::optional<std::string> salt = base64_decode((*attrs)[1].value);
  if (!salt || salt->empty()) {
    return std::nullopt;
  }
  const std::optional<int> iterations = parse_positive_int((*attrs)[2].value);
  if (!iterations || *iterations > max_iterations_) {
    return std::nullopt;
  }
  std::optional<Keys> k;
  if (keys_) {
    // The keys only fit the verifier they came from.
    if (*salt != keys_->salt || *iterations != keys_->iterations) {
      keys_mismatch_ = true;
      return std::nullopt;
    }
    k = Keys{keys_->client_key, digest(EVP_sha256(), keys_->client_key), keys_->server_key};
  } else {
    k = derive_keys(password_, *salt, *iterations);
  }
  if (!k) {
    return std::nullopt;
  }
  // c= is the gs2 header plus, when bound, the channel-binding data ("biws" for plain "n,,").
  const std::string without_proof =
      "c=" + base64_encode(gs2_header() + channel_binding_) + ",r=" + std::string(nonce);
  auth_message_ = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const std::string proof = xor_bytes(k->client_key, hmac_sha256(k->stored_key, auth_message_));
  server_signature_ = hmac_sha256(k->server_key, auth_message_);
  return without_proof + ",p=" + base64_encode(proof);
}

bool ScramClient::verify_server_final(std::string_view server_final) {
  // server-final-message: "v=<signature>" or "e=<error>", optionally followed by extensions.
  if (server_signature_.empty() || !server_final.starts_with("v=")) {
    return false;
  }
  const std::string_view value = server_final.substr(2, server_final.find(',') - 2);
  const std::optional<std::string> signature = base64_decode(value);
  return signature && constant_time_equal(*signature, server_signature_);
}

// ---- md5 ----

std::string md5_stored(std::string_view password, std::string_view user) {
  return "md5" + md5_hex(std::string(password) + std::string(user));
}

std::string md5_response_from_stored(std::string_view stored, const std::uint8_t salt[4]) {
  // `stored` is "md5" + 32 hex digits; anything else cannot produce a valid response.
  if (stored.size() != 35 || !stored.starts_with("md5")) {
    return {};
  }
  std::string input(stored.substr(3));
  input.append(reinterpret_cast<const char*>(salt), 4);
  return "md5" + md5_hex(input);
}

std::string md5_password_response(std::string_view password, std::string_view user,
                                  const std::uint8_t salt[4]) {
  return md5_response_from_stored(md5_stored(password, user), salt);
}

}  // namespace pglane::protocol
