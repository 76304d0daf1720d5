// Reading the files the config names (shared by the config loader and the users-file parser).
#pragma once

#include <optional>
#include <string>

namespace pglane::conf {

// Reads a whole file. On failure returns nullopt and sets `why` to the OS's reason.
std::optional<std::string> read_file(const std::string& path, std::string* why);

}  // namespace pglane::conf
