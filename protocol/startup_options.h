// What a StartupMessage's parameters ask for beyond user and database (docs 55.2.1): settings,
// including those in the "options" parameter, as the postmaster reads them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pglane::protocol {

// A setting name pglane will put into SQL unquoted: letters, digits, '_' and '.', at most 63
// bytes (NAMEDATALEN - 1).
bool is_safe_guc_name(std::string_view name);

// Splits the startup "options" parameter the way the postmaster does (pg_split_opts: spaces
// separate, backslash escapes) and appends its "-c name=value" / "--name=value" settings to
// `out` ('-' in names becomes '_'). False when it holds any other switch.
bool parse_options(std::string_view opts, std::vector<std::pair<std::string, std::string>>& out);

}  // namespace pglane::protocol
