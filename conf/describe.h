// The configuration in effect as key = value lines (SHOW CONFIG), secrets masked.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace pglane::conf {

std::vector<std::pair<std::string, std::string>> describe(const Config& config);

}  // namespace pglane::conf
