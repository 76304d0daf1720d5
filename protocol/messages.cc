#include "protocol/messages.h"

#include <algorithm>

namespace pglane::protocol {
namespace {

void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

void put_i32(std::string& out, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  out.push_back(static_cast<char>(u >> 24));
  out.push_back(static_cast<char>(u >> 16));
  out.push_back(static_cast<char>(u >> 8));
  out.push_back(static_cast<char>(u));
}

// A String on the wire ends at its first NUL, so a value with an embedded NUL is cut there:
// that is what the peer would read anyway, and the frame stays well-formed.
void put_i16(std::string& out, std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  out.push_back(static_cast<char>(u >> 8));
  out.push_back(static_cast<char>(u));
}

void put_cstring(std::string& out, std::string_view s) {
  out.append(s.substr(0, s.find('\0')));
  out.push_back('\0');
}

void patch_i32(std::string& out, std::size_t at, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  out[at] = static_cast<char>(u >> 24);
  out[at + 1] = static_cast<char>(u >> 16);
  out[at + 2] = static_cast<char>(u >> 8);
  out[at + 3] = static_cast<char>(u);
}

// Typed message: writes the type byte and a placeholder length; returns where the length is.
std::size_t begin(std::string& out, char type) {
  out.push_back(type);
  const std::size_t at = out.size();
  put_i32(out, 0);
  return at;
}

// Patches the length, which counts itself and everything after it.
void finish(std::string& out, std::size_t at) {
  patch_i32(out, at, static_cast<std::int32_t>(out.size() - at));
}

void encode_auth_code(std::string& out, std::int32_t code, std::string_view data) {
  const std::size_t at = begin(out, 'R');
  put_i32(out, code);
  out.append(data);
  finish(out, at);
}

void encode_error_like(std::string& out, char type, const ErrorFields& f) {
  // ErrorResponse/NoticeResponse (55.8 "Error and Notice Message Fields"): a list of
  // (field byte, String) ended by a zero byte. 'V' is the never-localized severity (9.6+).
  const std::size_t at = begin(out, type);
  put_u8(out, 'S');
  put_cstring(out, f.severity);
  put_u8(out, 'V');
  put_cstring(out, f.severity);
  put_u8(out, 'C');
  put_cstring(out, f.sqlstate);
  put_u8(out, 'M');
  put_cstring(out, f.message);
  if (!f.detail.empty()) {
    put_u8(out, 'D');
    put_cstring(out, f.detail);
  }
  if (!f.hint.empty()) {
    put_u8(out, 'H');
    put_cstring(out, f.hint);
  }
  put_u8(out, 0);
  finish(out, at);
}

}  // namespace

// ---- Startup phase ----

std::string_view StartupParams::get(std::string_view key) const {
  // PostgreSQL lets a repeated parameter overwrite the earlier one, so the last occurrence wins.
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->first == key) {
      return it->second;
    }
  }
  return {};
}

std::optional<StartupParams> parse_startup(std::uint32_t version, std::string_view body) {
  StartupParams p;
  p.major = static_cast<std::uint16_t>(version >> 16);
  p.minor = static_cast<std::uint16_t>(version & 0xffff);
  // Body: (name String, value String)* then a single zero byte, which must be the last byte
  // (PostgreSQL: "invalid startup packet layout: expected terminator as last byte").
  Reader r(body);
  while (true) {
    if (r.at_end()) {
      return std::nullopt;  // no terminator
    }
    const std::string_view name = r.cstring();
    if (!r.ok()) {
      return std::nullopt;
    }
    if (name.empty()) {
      break;  // that NUL was the terminator
    }
    const std::string_view value = r.cstring();
    if (!r.ok()) {
      return std::nullopt;
    }
    p.params.emplace_back(std::string(name), std::string(value));
  }
  if (!r.at_end()) {
    return std::nullopt;  // bytes after the terminator, or an empty name mid-list
  }
  if (p.get("user").empty()) {
    return std::nullopt;  // "no PostgreSQL user name specified in startup packet"
  }
  return p;
}

std::optional<CancelKey> parse_cancel(std::string_view body) {
  // Protocol 3.0 CancelRequest carries exactly a process ID and a 4-byte secret key.
  if (body.size() != 8) {
    return std::nullopt;
  }
  Reader r(body);
  CancelKey k;
  k.pid = r.i32();
  k.secret = r.i32();
  return k;
}

void encode_startup(std::string& out,
                    const std::vector<std::pair<std::string, std::string>>& params) {
  const std::size_t at = out.size();
  put_i32(out, 0);
  put_i32(out, static_cast<std::int32_t>(kProtocolV3));
  for (const auto& [name, value] : params) {
    put_cstring(out, name);
    put_cstring(out, value);
  }
  put_u8(out, 0);
  patch_i32(out, at, static_cast<std::int32_t>(out.size() - at));
}

void encode_ssl_request(std::string& out) {
  put_i32(out, 8);
  put_i32(out, static_cast<std::int32_t>(kSslRequestCode));
}

void encode_cancel_request(std::string& out, CancelKey key) {
  put_i32(out, 16);
  put_i32(out, static_cast<std::int32_t>(kCancelRequestCode));
  put_i32(out, key.pid);
  put_i32(out, key.secret);
}

// ---- Backend messages ----

void encode_error(std::string& out, const ErrorFields& fields) {
  encode_error_like(out, 'E', fields);
}

void encode_notice(std::string& out, const ErrorFields& fields) {
  encode_error_like(out, 'N', fields);
}

std::string_view error_field(std::string_view body, char code) {
  size_t i = 0;
  while (i < body.size() && body[i] != '\0') {
    const char field = body[i];
    const size_t end = body.find('\0', i + 1);
    if (end == std::string_view::npos) {
      return {};
    }
    if (field == code) {
      return body.substr(i + 1, end - i - 1);
    }
    i = end + 1;
  }
  return {};
}

std::string fatal_error(std::string_view sqlstate, std::string_view message) {
  ErrorFields f;
  f.severity = "FATAL";
  f.sqlstate = sqlstate;
  f.message = message;
  std::string out;
  encode_error(out, f);
  return out;
}

void encode_ready_for_query(std::string& out, char status) {
  const std::size_t at = begin(out, 'Z');
  out.push_back(status);
  finish(out, at);
}

void encode_auth_ok(std::string& out) {
  encode_auth_code(out, 0, {});
}

void encode_auth_cleartext(std::string& out) {
  encode_auth_code(out, 3, {});
}

void encode_auth_md5(std::string& out, const std::uint8_t salt[4]) {
  encode_auth_code(out, 5, std::string_view(reinterpret_cast<const char*>(salt), 4));
}

void encode_auth_sasl(std::string& out, const std::vector<std::string_view>& mechanisms) {
  const std::size_t at = begin(out, 'R');
  put_i32(out, 10);
  for (std::string_view m : mechanisms) {
    if (!m.empty()) {  // an empty name would end the list early
      put_cstring(out, m);
    }
  }
  put_u8(out, 0);
  finish(out, at);
}

void encode_auth_sasl_continue(std::string& out, std::string_view data) {
  encode_auth_code(out, 11, data);
}

void encode_auth_sasl_final(std::string& out, std::string_view data) {
  encode_auth_code(out, 12, data);
}

void encode_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  const std::size_t at = begin(out, 'S');
  put_cstring(out, name);
  put_cstring(out, value);
  finish(out, at);
}

void encode_backend_key_data(std::string& out, CancelKey key) {
  const std::size_t at = begin(out, 'K');
  put_i32(out, key.pid);
  put_i32(out, key.secret);
  finish(out, at);
}

void encode_negotiate_protocol_version(std::string& out, std::int32_t newest_minor,
                                       const std::vector<std::string_view>& unsupported) {
  const std::size_t at = begin(out, 'v');
  put_i32(out, newest_minor);
  put_i32(out, static_cast<std::int32_t>(unsupported.size()));
  for (std::string_view option : unsupported) {
    put_cstring(out, option);
  }
  finish(out, at);
}

// ---- Frontend messages ----

void encode_query(std::string& out, std::string_view sql) {
  const std::size_t at = begin(out, 'Q');
  put_cstring(out, sql);
  finish(out, at);
}

void encode_parse(std::string& out, std::string_view name, std::string_view query,
                  std::string_view param_types) {
  auto at = begin(out, 'P');
  put_cstring(out, name);
  put_cstring(out, query);
  out.append(param_types);
  finish(out, at);
}

void encode_close(std::string& out, char kind, std::string_view name) {
  auto at = begin(out, 'C');
  put_u8(out, static_cast<std::uint8_t>(kind));
  put_cstring(out, name);
  finish(out, at);
}

void encode_bind(std::string& out, std::string_view portal, std::string_view statement,
                 std::string_view tail) {
  auto at = begin(out, 'B');
  put_cstring(out, portal);
  put_cstring(out, statement);
  out.append(tail);
  finish(out, at);
}

void encode_describe(std::string& out, char kind, std::string_view name) {
  auto at = begin(out, 'D');
  put_u8(out, static_cast<std::uint8_t>(kind));
  put_cstring(out, name);
  finish(out, at);
}

void encode_parse_complete(std::string& out) {
  finish(out, begin(out, '1'));
}

void encode_close_complete(std::string& out) {
  finish(out, begin(out, '3'));
}

void encode_command_complete(std::string& out, std::string_view tag) {
  auto at = begin(out, 'C');
  put_cstring(out, tag);
  finish(out, at);
}

void encode_row_description(std::string& out, const std::vector<std::string_view>& columns) {
  auto at = begin(out, 'T');
  put_i16(out, static_cast<std::int16_t>(columns.size()));
  for (std::string_view c : columns) {
    put_cstring(out, c);
    put_i32(out, 0);   // table OID
    put_i16(out, 0);   // column number
    put_i32(out, 25);  // type OID: text
    put_i16(out, -1);  // variable length
    put_i32(out, -1);  // type modifier
    put_i16(out, 0);   // text format
  }
  finish(out, at);
}

void encode_data_row(std::string& out, const std::vector<std::string>& values) {
  auto at = begin(out, 'D');
  put_i16(out, static_cast<std::int16_t>(values.size()));
  for (const std::string& v : values) {
    put_i32(out, static_cast<std::int32_t>(v.size()));
    out.append(v);
  }
  finish(out, at);
}

void encode_terminate(std::string& out) {
  finish(out, begin(out, 'X'));
}

void encode_sync(std::string& out) {
  finish(out, begin(out, 'S'));
}

void encode_password(std::string& out, std::string_view password) {
  const std::size_t at = begin(out, 'p');
  put_cstring(out, password);
  finish(out, at);
}

void encode_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data) {
  const std::size_t at = begin(out, 'p');
  put_cstring(out, mechanism);
  put_i32(out, static_cast<std::int32_t>(data.size()));
  out.append(data);
  finish(out, at);
}

void encode_sasl_response(std::string& out, std::string_view data) {
  const std::size_t at = begin(out, 'p');
  out.append(data);
  finish(out, at);
}

// ---- Views of received messages ----

std::optional<ErrorView> parse_error(std::string_view body) {
  ErrorView v;
  std::string_view localized_severity;
  Reader r(body);
  while (true) {
    const std::uint8_t code = r.u8();
    if (!r.ok()) {
      return std::nullopt;  // no terminating zero byte
    }
    if (code == 0) {
      break;
    }
    const std::string_view value = r.cstring();
    if (!r.ok()) {
      return std::nullopt;
    }
    switch (code) {
      case 'S':
        localized_severity = value;
        break;
      case 'V':
        v.severity = value;
        break;
      case 'C':
        v.sqlstate = value;
        break;
      case 'M':
        v.message = value;
        break;
      default:
        break;  // clients must ignore fields they do not recognise
    }
  }
  if (!r.at_end()) {
    return std::nullopt;
  }
  // 'V' is absent before 9.6; 'S' may be translated, so prefer 'V'.
  if (v.severity.empty()) {
    v.severity = localized_severity;
  }
  return v;
}

std::optional<AuthRequest> parse_auth(std::string_view body) {
  Reader r(body);
  AuthRequest a;
  a.code = r.i32();
  if (!r.ok()) {
    return std::nullopt;
  }
  switch (a.code) {
    case 0:  // AuthenticationOk
    case 3:  // AuthenticationCleartextPassword
      if (!r.at_end()) {
        return std::nullopt;
      }
      return a;
    case 5:  // AuthenticationMD5Password: Byte4 salt
      a.data = r.bytes(4);
      if (!r.ok() || !r.at_end()) {
        return std::nullopt;
      }
      return a;
    case 10: {  // AuthenticationSASL: mechanism Strings, ended by an empty String
      a.data = r.rest();
      Reader list(a.data);
      while (!list.cstring().empty()) {
      }
      if (!list.ok() || !list.at_end()) {
        return std::nullopt;
      }
      return a;
    }
    default:  // 11 SASLContinue, 12 SASLFinal, and GSS/SSPI data: opaque payload
      a.data = r.rest();
      return a;
  }
}

std::optional<SaslInitial> parse_sasl_initial(std::string_view body) {
  Reader r(body);
  SaslInitial s;
  s.mechanism = r.cstring();
  const std::int32_t len = r.i32();
  if (!r.ok() || s.mechanism.empty() || len < -1) {
    return std::nullopt;
  }
  if (len >= 0) {  // -1 means "no initial response"
    s.data = r.bytes(static_cast<std::size_t>(len));
  }
  if (!r.ok() || !r.at_end()) {
    return std::nullopt;
  }
  return s;
}

std::optional<std::pair<std::string_view, std::string_view>> parse_parameter_status(
    std::string_view body) {
  Reader r(body);
  const std::string_view name = r.cstring();
  const std::string_view value = r.cstring();
  if (!r.ok() || !r.at_end()) {
    return std::nullopt;
  }
  return std::pair{name, value};
}

std::string_view statement_text(char type, std::string_view whole) {
  std::string_view body = whole.substr(std::min<size_t>(whole.size(), 5));
  if (type == 'P') {
    const size_t name_end = body.find('\0');
    if (name_end == std::string_view::npos) {
      return {};
    }
    body.remove_prefix(name_end + 1);
  }
  const size_t end = body.find('\0');
  return end == std::string_view::npos ? std::string_view() : body.substr(0, end);
}

}  // namespace pglane::protocol
