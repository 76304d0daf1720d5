// Fuzzes the sans-I/O frame decoder (protocol/frame.h) and the message views built on it
// (protocol/messages.h) with arbitrary bytes, as they arrive from a client or a server.
//
// The same input is read three ways: as a stream of typed messages (the relay loop), as an
// untyped startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest), and
// field by field through every parse_* view. Besides the sanitizers, it checks that a decoded
// frame never reaches past the bytes it was given, that decode_header and decode_frame agree,
// that a frame cut short is "need more" and never a message, and that what parse_startup,
// parse_cancel and parse_error accept survives a round trip through the matching encoder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace pglane::protocol;

// A small limit as well as the default, so that "over the limit" is reachable with short inputs.
constexpr std::size_t kSmallLimit = 1024;

bool within(std::string_view inner, std::string_view outer) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

// Every view over a message body: none may read past `body` or fail to terminate.
void parse_body(char type, std::string_view body) {
  switch (type) {
    case 'E':
    case 'N':
      if (auto e = parse_error(body)) {
        FUZZ_CHECK(within(e->severity, body) && within(e->sqlstate, body) &&
                   within(e->message, body));
      }
      break;
    case 'R':
      if (auto a = parse_auth(body)) {
        FUZZ_CHECK(within(a->data, body));
        FUZZ_CHECK(a->code != 5 || a->data.size() == 4);
      }
      break;
    case 'p':
      if (auto s = parse_sasl_initial(body)) {
        FUZZ_CHECK(!s->mechanism.empty() && within(s->mechanism, body) && within(s->data, body));
      }
      break;
    case 'S':
      if (auto ps = parse_parameter_status(body)) {
        FUZZ_CHECK(within(ps->first, body) && within(ps->second, body));
      }
      break;
    default:
      break;
  }
}

void check_typed(std::string_view buf, std::size_t limit) {
  const Decoded<Frame> header = decode_header(buf, limit);
  const Decoded<Frame> frame = decode_frame(buf, limit);
  // The header alone decides whether the length is legal.
  FUZZ_CHECK((header.status == DecodeStatus::kViolation) ==
             (frame.status == DecodeStatus::kViolation));
  if (header.status == DecodeStatus::kMessage) {
    FUZZ_CHECK(header.frame.size >= kHeaderSize && header.frame.size - 1 <= limit);
    FUZZ_CHECK(header.frame.type == buf[0] && header.frame.body.empty());
    // decode_frame has the message exactly when all of it is in the buffer.
    FUZZ_CHECK((frame.status == DecodeStatus::kMessage) == (header.frame.size <= buf.size()));
  }
  if (frame.status == DecodeStatus::kMessage) {
    FUZZ_CHECK(frame.frame.size <= buf.size());
    FUZZ_CHECK(frame.frame.size == header.frame.size && frame.frame.type == header.frame.type);
    FUZZ_CHECK(frame.frame.body.data() == buf.data() + kHeaderSize);
    FUZZ_CHECK(frame.frame.body.size() == frame.frame.size - kHeaderSize);
    // One byte short of the whole frame, it is "need more", never a message or a violation.
    FUZZ_CHECK(decode_frame(buf.substr(0, frame.frame.size - 1), limit).status ==
               DecodeStatus::kNeedMore);
  }
  if (frame.status == DecodeStatus::kViolation) {
    FUZZ_CHECK(!frame.error.empty());
  }
}

void check_startup(std::string_view buf) {
  const Decoded<StartupFrame> d = decode_startup(buf);
  if (d.status == DecodeStatus::kViolation) {
    FUZZ_CHECK(!d.error.empty());
    return;
  }
  if (d.status != DecodeStatus::kMessage) {
    return;
  }
  FUZZ_CHECK(d.frame.size >= 8 && d.frame.size <= kMaxStartupPacket);
  FUZZ_CHECK(d.frame.size <= buf.size());
  FUZZ_CHECK(d.frame.body.data() == buf.data() + 8 && d.frame.body.size() == d.frame.size - 8);
  FUZZ_CHECK(decode_startup(buf.substr(0, d.frame.size - 1)).status == DecodeStatus::kNeedMore);
  const std::string_view packet = buf.substr(0, d.frame.size);

  if (d.frame.code == kCancelRequestCode) {
    if (auto key = parse_cancel(d.frame.body)) {
      std::string out;
      encode_cancel_request(out, *key);
      FUZZ_CHECK(out == packet);
    } else {
      FUZZ_CHECK(d.frame.body.size() != 8);
    }
    return;
  }
  if (d.frame.code == kSslRequestCode || d.frame.code == kGssEncRequestCode) {
    return;
  }
  if (auto params = parse_startup(d.frame.code, d.frame.body)) {
    FUZZ_CHECK(params->major == d.frame.code >> 16 && params->minor == (d.frame.code & 0xffff));
    FUZZ_CHECK(!params->get("user").empty());
    for (const auto& [name, value] : params->params) {
      FUZZ_CHECK(!name.empty());
      FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
    }
    // Re-encoded, a 3.0 StartupMessage is byte for byte the packet it was parsed from.
    std::string out;
    encode_startup(out, params->params);
    if (d.frame.code == kProtocolV3) {
      FUZZ_CHECK(out == packet);
    }
    const Decoded<StartupFrame> again = decode_startup(out);
    FUZZ_CHECK(again.status == DecodeStatus::kMessage && again.frame.size == out.size());
    auto reparsed = parse_startup(again.frame.code, again.frame.body);
    FUZZ_CHECK(reparsed && reparsed->params == params->params);
  }
}

// The encoders the proxy uses for its own ErrorResponses, fed fields taken from the input: what
// comes back through parse_error is the field up to its first NUL, as the peer would read it.
void check_error_round_trip(std::string_view buf) {
  auto field = [&](std::size_t i) {
    std::string_view rest = buf;
    for (; i > 0; --i) {
      const std::size_t bar = rest.find('|');
      rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
    }
    return rest.substr(0, rest.find('|'));
  };
  auto cut = [](std::string_view s) { return s.substr(0, s.find('\0')); };
  ErrorFields f;
  f.severity = field(0);
  f.sqlstate = field(1);
  f.message = field(2);
  f.detail = field(3);
  f.hint = field(4);
  std::string out;
  encode_error(out, f);
  const Decoded<Frame> d = decode_frame(out);
  FUZZ_CHECK(d.status == DecodeStatus::kMessage && d.frame.type == 'E' &&
             d.frame.size == out.size());
  auto parsed = parse_error(d.frame.body);
  FUZZ_CHECK(parsed);
  FUZZ_CHECK(parsed->severity == cut(f.severity) && parsed->sqlstate == cut(f.sqlstate) &&
             parsed->message == cut(f.message));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // A stream of typed messages, as the relay loop consumes it.
  std::string_view rest = input;
  while (true) {
    check_typed(rest, kDefaultMaxMessage);
    check_typed(rest, kSmallLimit);
    const Decoded<Frame> d = decode_frame(rest);
    if (d.status != DecodeStatus::kMessage) {
      break;
    }
    parse_body(d.frame.type, d.frame.body);
    rest.remove_prefix(d.frame.size);
  }

  // The same bytes as a startup-phase packet.
  check_startup(input);

  // Every view over the raw bytes, as if they were a body.
  for (char type : {'E', 'R', 'p', 'S'}) {
    parse_body(type, input);
  }
  parse_startup(kProtocolV3, input);
  parse_cancel(input);

  check_error_round_trip(input);
  return 0;
}
