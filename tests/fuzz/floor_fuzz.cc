// Fuzzes what other gateways say on the floor channel (routing/floors.h decode_floor_message)
// and what Redis says on any connection (cache/redis/resp.h ReplyReader), both untrusted bytes.
// Checks: no crash, no read past the input; a decoded floor message re-encodes to text that
// decodes to the same message; the reply reader either yields replies, asks for more, or fails
// (and stays failed).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "cache/policy.h"
#include "cache/redis/resp.h"
#include "routing/floors.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace pglane;
  if (auto m = routing::decode_floor_message(in)) {
    const std::string again =
        routing::encode_floor_message(m->gateway, m->sent_us, m->db, m->written);
    auto m2 = routing::decode_floor_message(again);
    FUZZ_CHECK(m2.has_value());
    // More tables than a TableSet names become "every table" (unknown): the same meaning.
    FUZZ_CHECK(m2->gateway == m->gateway && m2->sent_us == m->sent_us && m2->db == m->db &&
               m2->written.unknown == m->written.unknown &&
               (m->written.unknown || m2->written.count == m->written.count));
  }
  // The same bytes fed to the RESP reader whole and in two pieces give the same replies.
  cache::redis::ReplyReader whole;
  whole.feed(in);
  int whole_replies = 0;
  while (whole.next()) {
    ++whole_replies;
  }
  cache::redis::ReplyReader split;
  split.feed(in.substr(0, size / 2));
  int split_replies = 0;
  while (split.next()) {
    ++split_replies;
  }
  split.feed(in.substr(size / 2));
  while (split.next()) {
    ++split_replies;
  }
  FUZZ_CHECK(whole.failed() || split.failed() || whole_replies == split_replies);
  // Result-cache values come back from Redis: opening one never trusts unsigned bytes, and a
  // sealed value opens to what was sealed.
  constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
  (void)cache::open(in, "k", kSecret);
  cache::Entry e;
  e.created_ms = static_cast<int64_t>(size) * 1000;
  e.versions = {std::string(in.substr(0, size / 3)), ""};
  e.payload = std::string(in);
  auto back = cache::open(cache::seal(e, "k", kSecret), "k", kSecret);
  FUZZ_CHECK(back && back->payload == e.payload && back->versions == e.versions &&
             back->created_ms == e.created_ms);
  FUZZ_CHECK(!cache::open(cache::seal(e, "k", kSecret), "k2", kSecret));
  (void)cache::cache_hint_ms(in);
  return 0;
}
