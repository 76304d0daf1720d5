// Fuzzes SCRAM-SHA-256 message handling (protocol/scram.h) from both ends with arbitrary bytes:
// pglane as the server a client logs in to, and pglane as the client of a PostgreSQL server.
//
// The first byte picks the role, the rest is split at '\n' into the messages of one exchange:
//   'S' server, no TLS:   mechanism \n client-first \n client-final
//   'P' server over TLS:  the same, with channel-binding data (SCRAM-SHA-256-PLUS is offered)
//   'C' client:           server-first \n server-final, for a password client and a client
//                         holding the same user's keys (SCRAM pass-through)
//   anything else:        the whole rest through parse_scram_verifier, base64 and SASLprep
// The exchange runs on RFC 7677's test vector (user "user", password "pencil", fixed nonces), so
// its messages in the corpus complete a real login and the fuzzer mutates from there.
//
// Besides the sanitizers, it checks that the server accepts a client-final only when its proof
// is the one the password gives (never a forged or random proof), that a finished exchange
// cannot be replayed, that a pass-through client answers exactly as the password client, and
// base64 round trips.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/scram.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace pglane::protocol;

constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr int kIterations = 4096;
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kChannelBinding = "fuzz tls-server-end-point hash";

std::string hmac(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

// The RFC 5802 keys for `password`, computed here independently of protocol/scram.cc.
struct Keys {
  std::string client_key;
  std::string server_key;
};
Keys derive(std::string_view password, std::string_view salt, int iterations) {
  std::array<unsigned char, 32> salted{};
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), 32, salted.data());
  const std::string_view s(reinterpret_cast<const char*>(salted.data()), salted.size());
  return {hmac(s, "Client Key"), hmac(s, "Server Key")};
}

const std::string& salt() {
  static const std::string s = *base64_decode(kSaltB64);
  return s;
}

const Keys& rfc_keys() {
  static const Keys k = derive(kPassword, salt(), kIterations);
  return k;
}

std::vector<std::string_view> split_lines(std::string_view s, std::size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const std::size_t nl = s.find('\n');
    if (nl == std::string_view::npos) {
      break;
    }
    parts.push_back(s.substr(0, nl));
    s.remove_prefix(nl + 1);
  }
  parts.push_back(s);
  parts.resize(max_parts);
  return parts;
}

void fuzz_server(std::string_view rest, bool tls) {
  const auto parts = split_lines(rest, 3);
  const std::string_view mechanism = parts[0];
  const std::string_view client_first = parts[1];
  const std::string_view client_final = parts[2];
  static const ScramVerifier verifier =
      *parse_scram_verifier(make_scram_verifier(kPassword, kIterations, salt()));

  ScramServer server(verifier, tls ? std::string(kChannelBinding) : std::string());
  server.set_nonce_for_test(std::string(kServerNonce));
  const std::optional<std::string> server_first =
      server.handle_client_first(mechanism, client_first);
  // Out of order: a second client-first ends the exchange.
  FUZZ_CHECK(!server.handle_client_first(mechanism, client_first));
  if (!server_first) {
    FUZZ_CHECK(!server.handle_client_final(client_final));
    return;
  }
  FUZZ_CHECK(server_first->starts_with("r="));
  const std::optional<std::string> server_final = server.handle_client_final(client_final);
  FUZZ_CHECK(!server.handle_client_final(client_final));  // no replay
  if (!server_final) {
    FUZZ_CHECK(!server.client_keys());
    return;
  }
  // Accepted: the proof must be exactly ClientKey XOR HMAC(StoredKey, AuthMessage) for the real
  // password, over the messages as they were sent (RFC 5802 section 3).
  const std::size_t p = client_final.rfind(",p=");
  FUZZ_CHECK(p != std::string_view::npos);
  const std::size_t gs2_end = client_first.find(",,");
  FUZZ_CHECK(gs2_end != std::string_view::npos);
  const std::string auth_message = std::string(client_first.substr(gs2_end + 2)) + "," +
                                   *server_first + "," + std::string(client_final.substr(0, p));
  const Keys& keys = rfc_keys();
  const std::string signature = hmac(sha256(keys.client_key), auth_message);
  std::string expected_proof = keys.client_key;
  for (std::size_t i = 0; i < expected_proof.size(); ++i) {
    expected_proof[i] = static_cast<char>(expected_proof[i] ^ signature[i]);
  }
  const std::optional<std::string> proof = base64_decode(client_final.substr(p + 3));
  FUZZ_CHECK(proof && *proof == expected_proof);
  FUZZ_CHECK(server.client_keys() && server.client_keys()->client_key == keys.client_key);
  FUZZ_CHECK(*server_final == "v=" + base64_encode(hmac(keys.server_key, auth_message)));
}

void fuzz_client(std::string_view rest) {
  const auto parts = split_lines(rest, 2);
  const std::string_view server_first = parts[0];
  const std::string_view server_final = parts[1];

  // The RFC's iteration count is also the most a server may ask for here: larger counts are
  // refused the same way whatever the limit, and keep every run fast.
  ScramClient client{std::string(kPassword), kIterations};
  client.set_nonce_for_test(std::string(kClientNonce), "user");
  const std::string client_first = client.client_first();
  FUZZ_CHECK(client_first == "n,,n=user,r=" + std::string(kClientNonce));
  const std::optional<std::string> client_final = client.handle_server_first(server_first);
  FUZZ_CHECK(!client.handle_server_first(server_first));  // answered once only

  const Keys& keys = rfc_keys();
  ScramClient passthrough(ScramKeys{kIterations, salt(), keys.client_key, keys.server_key});
  passthrough.set_nonce_for_test(std::string(kClientNonce), "user");
  FUZZ_CHECK(passthrough.client_first() == client_first);
  const std::optional<std::string> passthrough_final =
      passthrough.handle_server_first(server_first);

  if (!client_final) {
    FUZZ_CHECK(!client.verify_server_final(server_final));
    FUZZ_CHECK(!passthrough_final);  // the keys fit only what the password accepts too
    return;
  }
  FUZZ_CHECK(client_final->starts_with("c=biws,r=" + std::string(kClientNonce)));
  // The same verifier's keys log in exactly as the password does, or say they do not fit.
  FUZZ_CHECK(passthrough_final ? *passthrough_final == *client_final : passthrough.keys_mismatch());
  const bool verified = client.verify_server_final(server_final);
  FUZZ_CHECK(!passthrough_final || passthrough.verify_server_final(server_final) == verified);
  if (verified) {
    // Only the real ServerSignature verifies: recompute it from the salt and count the server
    // sent (the attributes up to ",i=" are r= and s=, checked by handle_server_first).
    const std::size_t s = server_first.find(",s=");
    const std::size_t i = server_first.find(",i=");
    FUZZ_CHECK(s != std::string_view::npos && i != std::string_view::npos && s < i);
    const std::optional<std::string> sent_salt =
        base64_decode(server_first.substr(s + 3, i - s - 3));
    std::string_view count = server_first.substr(i + 3);
    count = count.substr(0, count.find(','));
    FUZZ_CHECK(sent_salt);
    const Keys k = derive(kPassword, *sent_salt, std::stoi(std::string(count)));
    const std::string_view without_proof =
        std::string_view(*client_final).substr(0, client_final->rfind(",p="));
    const std::string auth_message = "n=user,r=" + std::string(kClientNonce) + "," +
                                     std::string(server_first) + "," + std::string(without_proof);
    std::string_view v = server_final.substr(2);
    v = v.substr(0, v.find(','));
    FUZZ_CHECK(base64_decode(v) == hmac(k.server_key, auth_message));
  }
}

void fuzz_text(std::string_view text) {
  if (auto v = parse_scram_verifier(text)) {
    FUZZ_CHECK(v->iterations >= 1 && !v->salt.empty());
    FUZZ_CHECK(v->stored_key.size() == 32 && v->server_key.size() == 32);
  }
  if (auto raw = base64_decode(text)) {
    FUZZ_CHECK(base64_encode(*raw).size() == text.size());
  }
  FUZZ_CHECK(base64_decode(base64_encode(text)) == std::string(text));
  const std::string prepared = saslprep_password(text);
  FUZZ_CHECK(prepared.empty() == text.empty());
  bool ascii = true;
  for (unsigned char c : text) {
    ascii = ascii && c < 0x80;
  }
  FUZZ_CHECK(!ascii || prepared == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 'S':
      fuzz_server(rest, false);
      break;
    case 'P':
      fuzz_server(rest, true);
      break;
    case 'C':
      fuzz_client(rest);
      break;
    default:
      fuzz_text(rest);
      break;
  }
  return 0;
}
