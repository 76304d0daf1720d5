#include "cache/entry.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace pglane::cache {

namespace {

constexpr std::string_view kMagic = "PGLC2";
constexpr size_t kMac = 32;
constexpr size_t kMaxVersions = 64;

void put_u32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out.append(b, 4);
}

void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Length-prefixed, so that no two different inputs serialise alike.
void put_pairs(std::string& out, const SettingPairs* pairs) {
  put_u32(out, pairs == nullptr ? 0 : static_cast<uint32_t>(pairs->size()));
  if (pairs != nullptr) {
    for (const auto& [k, v] : *pairs) {
      put_bytes(out, k);
      put_bytes(out, v);
    }
  }
}

std::string mac(std::string_view secret, std::string_view a, std::string_view b) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string msg;
  msg.reserve(a.size() + b.size() + 4);
  put_bytes(msg, a);
  msg.append(b);
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// AES-256-GCM under a key derived from the secret, the Redis key as associated data. Sealing:
// nonce (12 random bytes), ciphertext, tag (16). nullopt when OpenSSL fails or the tag does not
// verify.
std::optional<std::string> gcm(bool encrypt, std::string_view secret, std::string_view redis_key,
                               std::string_view in) {
  constexpr size_t kNonce = 12;
  constexpr size_t kTag = 16;
  const std::string key = mac(secret, "value-encryption-key", "");
  std::string nonce(kNonce, '\0');
  std::string_view text = in;
  if (encrypt) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonce) != 1) {
      return std::nullopt;
    }
  } else {
    if (in.size() < kNonce + kTag) {
      return std::nullopt;
    }
    nonce.assign(in.substr(0, kNonce));
    text = in.substr(kNonce, in.size() - kNonce - kTag);
  }
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      &EVP_CIPHER_CTX_free);
  const auto* k = reinterpret_cast<const unsigned char*>(key.data());
  const auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  int ok = ctx != nullptr &&
           (encrypt ? EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k, iv)
                    : EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k, iv));
  int len = 0;
  if (ok) {
    const auto* aad = reinterpret_cast<const unsigned char*>(redis_key.data());
    ok = encrypt
             ? EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad, static_cast<int>(redis_key.size()))
             : EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad, static_cast<int>(redis_key.size()));
  }
  std::string out(text.size() + kTag, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  const auto* t = reinterpret_cast<const unsigned char*>(text.data());
  int n = 0;
  if (ok) {
    ok = encrypt ? EVP_EncryptUpdate(ctx.get(), o, &n, t, static_cast<int>(text.size()))
                 : EVP_DecryptUpdate(ctx.get(), o, &n, t, static_cast<int>(text.size()));
  }
  if (!ok) {
    return std::nullopt;
  }
  int tail = 0;
  if (encrypt) {
    if (EVP_EncryptFinal_ex(ctx.get(), o + n, &tail) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, o + n + tail) != 1) {
      return std::nullopt;
    }
    out.resize(static_cast<size_t>(n + tail) + kTag);
    return nonce + out;
  }
  std::string tag(in.substr(in.size() - kTag));
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o + n, &tail) != 1) {
    return std::nullopt;
  }
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool u32(uint32_t& v) {
    if (s_.size() < 4) {
      return false;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(s_.data());
    v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    s_.remove_prefix(4);
    return true;
  }
  bool bytes(std::string_view& out) {
    uint32_t n = 0;
    if (!u32(n) || n > s_.size()) {
      return false;
    }
    out = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

}  // namespace

std::string result_key(const KeyParts& parts, std::string_view secret) {
  std::string in;
  in.reserve(parts.sql.size() + 256);
  put_bytes(in, "key1");
  put_bytes(in, parts.database);
  put_bytes(in, parts.user);
  put_pairs(in, parts.startup);
  put_pairs(in, parts.settings);
  put_bytes(in, parts.sql);
  return absl::BytesToHexString(mac(secret, "result-key", in));
}

std::string seal(const Entry& e, std::string_view redis_key, std::string_view secret,
                 bool encrypt) {
  std::string out;
  out.reserve(e.payload.size() + 128);
  out.append(kMagic);
  out.push_back(encrypt ? 'E' : 'P');
  put_u32(out, static_cast<uint32_t>(static_cast<uint64_t>(e.created_ms) >> 32));
  put_u32(out, static_cast<uint32_t>(static_cast<uint64_t>(e.created_ms)));
  put_u32(out, static_cast<uint32_t>(e.ttl_ms));
  put_u32(out, static_cast<uint32_t>(e.creator >> 32));
  put_u32(out, static_cast<uint32_t>(e.creator));
  put_u32(out, static_cast<uint32_t>(e.versions.size()));
  for (const std::string& v : e.versions) {
    put_bytes(out, v);
  }
  if (encrypt) {
    std::optional<std::string> sealed = gcm(true, secret, redis_key, e.payload);
    if (!sealed) {
      return std::string();  // (OpenSSL failed: nothing is stored)
    }
    put_bytes(out, *sealed);
  } else {
    put_bytes(out, e.payload);
  }
  out.append(mac(secret, redis_key, out));
  return out;
}

std::optional<Entry> open(std::string_view value, std::string_view redis_key,
                          std::string_view secret) {
  if (value.size() < kMagic.size() + kMac || value.substr(0, kMagic.size()) != kMagic) {
    return std::nullopt;
  }
  const std::string_view body = value.substr(0, value.size() - kMac);
  const std::string expect = mac(secret, redis_key, body);
  if (CRYPTO_memcmp(expect.data(), value.data() + body.size(), kMac) != 0) {
    return std::nullopt;
  }
  if (body.size() < kMagic.size() + 1) {
    return std::nullopt;
  }
  const char form = body[kMagic.size()];
  if (form != 'P' && form != 'E') {
    return std::nullopt;
  }
  Reader r(body.substr(kMagic.size() + 1));
  Entry e;
  uint32_t hi = 0;
  uint32_t lo = 0;
  uint32_t ttl = 0;
  uint32_t chi = 0;
  uint32_t clo = 0;
  uint32_t n = 0;
  if (!r.u32(hi) || !r.u32(lo) || !r.u32(ttl) || !r.u32(chi) || !r.u32(clo) || !r.u32(n) ||
      n > kMaxVersions || ttl > 0x7fffffff) {
    return std::nullopt;
  }
  e.creator = (uint64_t{chi} << 32) | clo;
  e.created_ms = static_cast<int64_t>((uint64_t{hi} << 32) | lo);
  e.ttl_ms = static_cast<int32_t>(ttl);
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view v;
    if (!r.bytes(v)) {
      return std::nullopt;
    }
    e.versions.emplace_back(v);
  }
  std::string_view payload;
  if (!r.bytes(payload) || !r.rest().empty()) {
    return std::nullopt;
  }
  if (form == 'E') {
    std::optional<std::string> plain = gcm(false, secret, redis_key, payload);
    if (!plain) {
      return std::nullopt;
    }
    e.payload = std::move(*plain);
  } else {
    e.payload.assign(payload);
  }
  return e;
}

namespace {
// Debian's abseil has its own string_view.
absl::string_view av(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
}  // namespace

std::string database_tag(std::string_view prefix, uint64_t db) {
  return absl::StrCat(av(prefix), ":{db:", absl::Hex(db), "}");
}

std::string version_key(std::string_view tag, uint64_t table) {
  return absl::StrCat(av(tag), ":v:", absl::Hex(table));
}

std::string database_version_key(std::string_view tag) {
  return absl::StrCat(av(tag), ":v:*");
}

std::string entry_key(std::string_view tag, std::string_view result_key) {
  return absl::StrCat(av(tag), ":c:", av(result_key));
}

}  // namespace pglane::cache
