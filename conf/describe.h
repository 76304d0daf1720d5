// The configuration in effect as key = value lines (SHOW CONFIG), secrets masked.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace pglane::conf {

std::vector<std::pair<std::string, std::string>> describe(const Config& config);

// The keys whose value differs between two configurations (added or dropped keys included,
// with "" for the side that lacks them), in describe() order.
struct KeyChange {
  std::string key;
  std::string before;
  std::string after;
};
std::vector<KeyChange> diff(const Config& before, const Config& after);

}  // namespace pglane::conf
