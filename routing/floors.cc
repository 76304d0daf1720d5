#include "routing/floors.h"

#include <algorithm>
#include <bit>

#include "routing/lexer.h"
#include "routing/session_effects.h"

namespace pglane::routing {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t fnv(std::string_view s, uint64_t h, bool fold) {
  for (char c : s) {
    if (fold && c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
  return h;
}

// A final mix so that nearby keys spread over the slots.
uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

bool in_catalog_schema(const QualifiedName& n) {
  return n.schema == "pg_catalog" || n.schema == "information_schema";
}

// Whether a call of `fn` cannot change data (decide() in route.cc applies the same test to
// routing).
bool cannot_write(const QualifiedName& fn, const RouteContext& ctx) {
  if ((fn.schema.empty() || fn.schema == "pg_catalog") &&
      (fn.name == "txid_current" || fn.name == "pg_current_xact_id")) {
    return true;  // assigns a transaction ID, changes no table
  }
  if (ctx.read_only_allow && ctx.read_only_allow->contains(fn.name) &&
      (fn.schema.empty() || fn.schema == "pg_catalog")) {
    return true;
  }
  std::optional<bool> ro = ctx.catalog ? ctx.catalog->read_only(fn) : std::nullopt;
  return ro.value_or(false);
}

}  // namespace

void TableSet::add(uint64_t key) {
  if (std::find(keys.begin(), keys.begin() + count, key) != keys.begin() + count) {
    return;
  }
  if (count == kMax) {
    unknown = true;
    return;
  }
  keys[count++] = key;
}

void TableSet::merge(const TableSet& other) {
  unknown = unknown || other.unknown;
  for (uint64_t k : other.named()) {
    add(k);
  }
}

uint64_t table_key(std::string_view name) {
  return fnv(name, kFnvOffset, true);
}

uint64_t database_key(std::string_view database) {
  return fnv(database, kFnvOffset ^ 0x5bd1e995ull, false);
}

void add_writes(const StatementInfo& info, const RouteContext& ctx, TableSet& out) {
  using K = StatementInfo::Kind;
  if (info.parse_failed || info.kind == K::kUtility) {
    out.unknown = true;
    return;
  }
  for (const auto& fn : info.functions) {
    if (!cannot_write(fn, ctx)) {
      out.unknown = true;  // a volatile function may write any table
      return;
    }
  }
  const RelationCatalog* rel = ctx.catalog != nullptr ? &ctx.catalog->relations() : nullptr;
  if (rel != nullptr && !rel->loaded() && !info.tables_written.empty()) {
    out.unknown = true;  // the relations could not be read: any table may have triggers
    return;
  }
  for (const auto& t : info.tables_written) {
    if (rel != nullptr && !rel->empty()) {
      const std::string name = lex::lower(t.name);
      bool is_view = false;
      bool complete = true;
      rel->bases(name, is_view, complete);
      if (is_view || rel->cascades(name)) {
        out.unknown = true;  // a trigger, rule, cascade or view may change other tables
        return;
      }
    }
    out.add(table_key(t.name));
  }
  if (info.kind == K::kWrite && info.tables_written.empty() && !info.locks_rows) {
    out.unknown = true;  // SELECT INTO and other writes whose target is not named
  }
}

void add_reads(const StatementInfo& info, const RouteContext& ctx, TableSet& out) {
  if (info.begins_transaction) {
    out.unknown = true;  // a transaction's later statements run where it starts, unchecked
    return;
  }
  for (const auto& fn : info.functions) {
    if (!fn.schema.empty() && !in_catalog_schema(fn)) {
      out.unknown = true;  // a user's function may read any table
      return;
    }
    if (fn.schema.empty() && !is_builtin_function(fn.name)) {
      out.unknown = true;
      return;
    }
  }
  const RelationCatalog* rel = ctx.catalog != nullptr ? &ctx.catalog->relations() : nullptr;
  for (const auto& t : info.tables_read) {
    if (rel != nullptr && !rel->empty()) {
      bool is_view = false;
      bool complete = true;
      std::vector<std::string> bases = rel->bases(lex::lower(t.name), is_view, complete);
      if (is_view) {
        if (!complete || bases.empty()) {
          out.unknown = true;
          return;
        }
        for (const std::string& b : bases) {
          out.add(table_key(b));  // a view holds what its base tables hold
        }
        // ... and the name itself, in case another schema has a table of that name.
        out.add(table_key(t.name));
        continue;
      }
    }
    out.add(table_key(t.name));
  }
}

namespace {

std::string hex(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  return out;
}

// 1 to 16 lower-case hex digits, nothing else.
bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 16) {
    return false;
  }
  out = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) {
      return false;
    }
    out = (out << 4) | static_cast<uint64_t>(d);
  }
  return true;
}

bool parse_decimal(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 18) {
    return false;
  }
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    out = out * 10 + (c - '0');
  }
  return true;
}

// The next space-separated field of `rest`, consumed.
std::string_view field(std::string_view& rest) {
  const size_t sp = rest.find(' ');
  std::string_view f = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  return f;
}

}  // namespace

std::string encode_floor_message(uint64_t gateway, int64_t sent_us, uint64_t db,
                                 const TableSet& written) {
  std::string out = "1 " + hex(gateway) + " " + std::to_string(sent_us) + " " + hex(db) + " ";
  if (written.unknown) {
    out += '*';
    return out;
  }
  for (size_t i = 0; i < written.count; ++i) {
    if (i > 0) {
      out += ',';
    }
    out += hex(written.keys[i]);
  }
  return out;
}

std::optional<FloorMessage> decode_floor_message(std::string_view text) {
  std::string_view rest = text;
  FloorMessage m;
  if (field(rest) != "1" || !parse_hex(field(rest), m.gateway) ||
      !parse_decimal(field(rest), m.sent_us) || !parse_hex(field(rest), m.db)) {
    return std::nullopt;
  }
  std::string_view tables = field(rest);
  if (!rest.empty() || tables.empty()) {
    return std::nullopt;
  }
  if (tables == "*") {
    m.written.unknown = true;
    return m;
  }
  while (!tables.empty()) {
    const size_t comma = tables.find(',');
    uint64_t key = 0;
    if (!parse_hex(tables.substr(0, comma), key)) {
      return std::nullopt;
    }
    m.written.add(key);
    tables = comma == std::string_view::npos ? std::string_view() : tables.substr(comma + 1);
    if (comma != std::string_view::npos && tables.empty()) {
      return std::nullopt;  // a trailing comma
    }
  }
  return m;
}

FloorBoard::FloorBoard(size_t slots) {
  const size_t n = std::bit_ceil(std::max<size_t>(slots, 64));
  mask_ = n - 1;
  slots_ = std::make_unique<std::atomic<Nanos>[]>(n);
  for (size_t i = 0; i < n; ++i) {
    slots_[i].store(0, std::memory_order_relaxed);
  }
}

void FloorBoard::raise(std::atomic<Nanos>& slot, Nanos at) {
  Nanos cur = slot.load(std::memory_order_relaxed);
  while (cur < at && !slot.compare_exchange_weak(cur, at, std::memory_order_release,
                                                 std::memory_order_relaxed)) {
  }
}

std::atomic<FloorBoard::Nanos>& FloorBoard::slot(uint64_t key) const {
  return slots_[mix(key) & mask_];
}

uint64_t FloorBoard::all_key(uint64_t db) {
  return db ^ 0xa11a11a11a11a11aull;
}

uint64_t FloorBoard::any_key(uint64_t db) {
  return db ^ 0x0a0a0a0a0a0a0a0aull;
}

void FloorBoard::wrote(uint64_t db, const TableSet& written, Nanos at) {
  if (written.unknown) {
    wrote_database(db, at);
    return;
  }
  for (uint64_t t : written.named()) {
    raise(slot(db ^ t), at);
  }
  if (written.count > 0) {
    raise(slot(any_key(db)), at);
  }
}

void FloorBoard::wrote_database(uint64_t db, Nanos at) {
  raise(slot(all_key(db)), at);
  raise(slot(any_key(db)), at);
}

void FloorBoard::wrote_everything(Nanos at) {
  raise(everything_, at);
}

FloorBoard::Nanos FloorBoard::floor(uint64_t db, const TableSet& read) const {
  Nanos f = std::max(everything_.load(std::memory_order_acquire),
                     slot(all_key(db)).load(std::memory_order_acquire));
  if (read.unknown) {
    return std::max(f, slot(any_key(db)).load(std::memory_order_acquire));
  }
  for (uint64_t t : read.named()) {
    f = std::max(f, slot(db ^ t).load(std::memory_order_acquire));
  }
  return f;
}

FloorBoard::Nanos FloorBoard::database_floor(uint64_t db) const {
  return std::max(everything_.load(std::memory_order_acquire),
                  slot(any_key(db)).load(std::memory_order_acquire));
}

}  // namespace pglane::routing
