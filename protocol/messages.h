// Typed views over PostgreSQL v3 messages that the proxy must understand, and encoders for the
// messages the proxy itself sends. Encoders append to a std::string so a caller can batch several
// messages into one write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/frame.h"

namespace pglane::protocol {

// SQLSTATE codes the proxy raises itself (PostgreSQL docs, Appendix A).
namespace sqlstate {
inline constexpr std::string_view kProtocolViolation = "08P01";
inline constexpr std::string_view kConnectionFailure = "08006";
inline constexpr std::string_view kTransactionResolutionUnknown = "08007";
inline constexpr std::string_view kReadOnlySqlTransaction = "25006";
inline constexpr std::string_view kCannotConnectNow = "57P03";
inline constexpr std::string_view kInvalidPassword = "28P01";
inline constexpr std::string_view kInvalidAuthorization = "28000";
inline constexpr std::string_view kInvalidCatalogName = "3D000";
inline constexpr std::string_view kTooManyConnections = "53300";
inline constexpr std::string_view kQueryCanceled = "57014";
inline constexpr std::string_view kAdminShutdown = "57P01";
inline constexpr std::string_view kFeatureNotSupported = "0A000";
inline constexpr std::string_view kInternalError = "XX000";
inline constexpr std::string_view kIdleSessionTimeout = "57P05";
}  // namespace sqlstate

// ---- Startup phase ----

// StartupMessage parameters in the order the client sent them. `user` is required by PostgreSQL;
// `database` defaults to the user name.
struct StartupParams {
  std::uint16_t major = 3;
  std::uint16_t minor = 0;
  std::vector<std::pair<std::string, std::string>> params;
  std::string_view get(std::string_view key) const;  // "" when absent
};

// Parses the body of a StartupMessage (after the version code). nullopt when the parameter list
// is malformed (missing terminator, unterminated strings, empty name, or a missing "user").
std::optional<StartupParams> parse_startup(std::uint32_t version, std::string_view body);

struct CancelKey {
  std::int32_t pid = 0;
  std::int32_t secret = 0;
  bool operator==(const CancelKey&) const = default;
};
// Parses the body of a CancelRequest (after the request code).
std::optional<CancelKey> parse_cancel(std::string_view body);

// The SQL of a whole Query ('Q') or Parse ('P') message, header included ("" when malformed).
std::string_view statement_text(char type, std::string_view whole);

// Encodes a complete untyped StartupMessage 3.0 with the given parameters.
void encode_startup(std::string& out,
                    const std::vector<std::pair<std::string, std::string>>& params);
void encode_ssl_request(std::string& out);
void encode_cancel_request(std::string& out, CancelKey key);

// ---- Backend messages the proxy sends ----

struct ErrorFields {
  std::string_view severity = "ERROR";  // ERROR, FATAL, PANIC, WARNING, NOTICE, ...
  std::string_view sqlstate;
  std::string_view message;
  std::string_view detail;
  std::string_view hint;
};
void encode_error(std::string& out, const ErrorFields& fields);   // 'E' ErrorResponse
void encode_notice(std::string& out, const ErrorFields& fields);  // 'N' NoticeResponse
// The value of field `code` ('C' SQLSTATE, 'S' severity, 'M' message...) in the body of an
// ErrorResponse or NoticeResponse (after the 5-byte header), or "" when absent or malformed.
std::string_view error_field(std::string_view body, char code);
// Convenience: a FATAL ErrorResponse.
std::string fatal_error(std::string_view sqlstate, std::string_view message);

void encode_ready_for_query(std::string& out, char status);          // 'Z'; status 'I', 'T' or 'E'
void encode_auth_ok(std::string& out);                               // 'R' code 0
void encode_auth_cleartext(std::string& out);                        // 'R' code 3
void encode_auth_md5(std::string& out, const std::uint8_t salt[4]);  // 'R' code 5
void encode_auth_sasl(std::string& out, const std::vector<std::string_view>& mechanisms);  // 10
void encode_auth_sasl_continue(std::string& out, std::string_view data);                   // 11
void encode_auth_sasl_final(std::string& out, std::string_view data);                      // 12
void encode_parameter_status(std::string& out, std::string_view name, std::string_view value);
void encode_backend_key_data(std::string& out, CancelKey key);  // 'K'
// 'v' NegotiateProtocolVersion: newest minor version we support and the options we did not.
void encode_negotiate_protocol_version(std::string& out, std::int32_t newest_minor,
                                       const std::vector<std::string_view>& unsupported);

// ---- Frontend messages the proxy sends to servers ----

void encode_query(std::string& out, std::string_view sql);          // 'Q'
void encode_terminate(std::string& out);                            // 'X'
void encode_sync(std::string& out);                                 // 'S'
void encode_password(std::string& out, std::string_view password);  // 'p' (cleartext or md5)
void encode_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data);
void encode_sasl_response(std::string& out, std::string_view data);

// Extended-query messages pglane writes itself when it manages prepared statements for
// transaction pooling (docs 55.7). `param_types` is the raw int16 count + int32 OIDs tail of a
// Parse body, copied from the client's Parse.
void encode_parse(std::string& out, std::string_view name, std::string_view query,
                  std::string_view param_types);
void encode_close(std::string& out, char kind, std::string_view name);  // kind 'S' or 'P'
// Bind with the statement name replaced; `tail` is everything after the statement name.
void encode_bind(std::string& out, std::string_view portal, std::string_view statement,
                 std::string_view tail);
void encode_describe(std::string& out, char kind, std::string_view name);
void encode_parse_complete(std::string& out);                          // '1'
void encode_close_complete(std::string& out);                          // '3'
void encode_command_complete(std::string& out, std::string_view tag);  // 'C'
// 'T' with every column text (type 25, text format), for answers pglane makes itself.
void encode_row_description(std::string& out, const std::vector<std::string_view>& columns);
void encode_data_row(std::string& out, const std::vector<std::string>& values);  // 'D', text

// ---- Views of received messages ----

// Fields of an ErrorResponse/NoticeResponse body.
struct ErrorView {
  std::string_view severity;
  std::string_view sqlstate;
  std::string_view message;
};
std::optional<ErrorView> parse_error(std::string_view body);

// 'R' Authentication* request from a server.
struct AuthRequest {
  std::int32_t code = -1;  // 0 ok, 3 cleartext, 5 md5, 10 SASL, 11 continue, 12 final
  std::string_view data;   // md5: 4-byte salt; SASL: mechanism list; continue/final: payload
};
std::optional<AuthRequest> parse_auth(std::string_view body);

// Client's 'p' message during SASL: SASLInitialResponse (mechanism + data) or SASLResponse (data).
struct SaslInitial {
  std::string_view mechanism;
  std::string_view data;
};
std::optional<SaslInitial> parse_sasl_initial(std::string_view body);

// 'S' ParameterStatus.
std::optional<std::pair<std::string_view, std::string_view>> parse_parameter_status(
    std::string_view body);

}  // namespace pglane::protocol
