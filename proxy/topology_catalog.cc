// Topology, the function volatility catalog: which functions a read may call on a replica, per
// database, read from pg_proc at startup and every routing.catalog_refresh_ms.

#include <libpq-fe.h>

#include "absl/strings/str_cat.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/probe.h"
#include "proxy/topology.h"

namespace pglane::proxy {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr const char* kCatalogSql =
    "SELECT n.nspname, p.proname, pg_catalog.bool_and(p.provolatile OPERATOR(pg_catalog.<>) 'v'), "
    "pg_catalog.bool_and(p.provolatile OPERATOR(pg_catalog.=) 'i') "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
    "ON n.oid OPERATOR(pg_catalog.=) p.pronamespace "
    "GROUP BY 1, 2";

// Tables whose writes may change other tables (kind 'c'), and views' base relations (kind 'v').
// See routing::RelationCatalog.
constexpr const char* kRelationsSql =
    "SELECT c.relname, 'c', '' FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'f', 'm', 'v') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND ("
    "EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid "
    "AND NOT t.tgisinternal) "
    "OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class OPERATOR(pg_catalog.=) "
    "c.oid AND r.ev_type OPERATOR(pg_catalog.<>) '1') "
    "OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype OPERATOR(pg_catalog.=) "
    "'f' AND k.confrelid OPERATOR(pg_catalog.=) c.oid AND (k.confupdtype NOT IN ('a', 'r') OR "
    "k.confdeltype NOT IN ('a', 'r'))) "
    "OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) "
    "c.oid OR i.inhparent OPERATOR(pg_catalog.=) c.oid)) "
    "UNION ALL "
    "SELECT DISTINCT v.relname, 'v', COALESCE(b.relname, '') FROM pg_catalog.pg_class v "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) v.relnamespace "
    "JOIN pg_catalog.pg_rewrite r ON r.ev_class OPERATOR(pg_catalog.=) v.oid "
    "LEFT JOIN (pg_catalog.pg_depend d JOIN pg_catalog.pg_class b "
    "ON b.oid OPERATOR(pg_catalog.=) d.refobjid) ON d.classid OPERATOR(pg_catalog.=) "
    "'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) r.oid "
    "AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
    "AND b.oid OPERATOR(pg_catalog.<>) v.oid "
    "WHERE v.relkind OPERATOR(pg_catalog.=) 'v' "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "UNION ALL "
    // Views the cache cannot judge from a statement's text, and sequences.
    "SELECT DISTINCT v.relname, 'x', '' FROM pg_catalog.pg_class v "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) v.relnamespace "
    "LEFT JOIN pg_catalog.pg_rewrite r ON r.ev_class OPERATOR(pg_catalog.=) v.oid "
    "LEFT JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) "
    "'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) r.oid "
    "LEFT JOIN pg_catalog.pg_proc p ON d.refclassid OPERATOR(pg_catalog.=) "
    "'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid OPERATOR(pg_catalog.=) d.refobjid "
    "LEFT JOIN pg_catalog.pg_class b ON d.refclassid OPERATOR(pg_catalog.=) "
    "'pg_catalog.pg_class'::pg_catalog.regclass AND b.oid OPERATOR(pg_catalog.=) d.refobjid "
    "LEFT JOIN pg_catalog.pg_namespace bn ON bn.oid OPERATOR(pg_catalog.=) b.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND (v.relkind "
    "OPERATOR(pg_catalog.=) 'S' OR (v.relkind OPERATOR(pg_catalog.=) 'v' AND "
    "(p.provolatile OPERATOR(pg_catalog.<>) 'i' OR bn.nspname IN ('pg_catalog', "
    "'information_schema'))))";

std::string lower(const char* s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::shared_ptr<const routing::FunctionCatalog> Topology::catalog(const std::string& database) {
  {
    std::lock_guard lock(mu_);
    auto it = catalogs_.find(database);
    if (it != catalogs_.end()) {
      return it->second;
    }
    if (!catalog_wanted_.insert(database).second) {
      return nullptr;
    }
  }
  wake_.notify_all();
  return nullptr;
}

void Topology::reload_catalogs() {
  {
    std::lock_guard lock(mu_);
    catalogs_stale_ = true;
  }
  wake_.notify_all();
}

// Every database clients may use, so that routing is right from the first query: a function
// call counts as a write until its database's volatility is known.
std::vector<std::string> Topology::list_databases() {
  const auto& h = cfg_.health;
  std::vector<std::string> out;
  const auto deadline = Clock::now() + milliseconds(std::max(live().timeout_ms.load(), 5000));
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    const EndpointState* inst = instances_[i].get();
    Probe probe;
    std::string error;
    if (!probe.connect(conn_params(inst->endpoint, h.database, "pglane-catalog"), deadline,
                       error)) {
      continue;
    }
    PGresult* r = probe.query(
        "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate",
        deadline, error);
    for (int i = 0; r != nullptr && i < PQntuples(r); ++i) {
      out.emplace_back(PQgetvalue(r, i, 0));
    }
    PQclear(r);
    if (!out.empty()) {
      break;
    }
  }
  return out;
}

void Topology::catalog_loop() {
  std::unordered_map<std::string, SteadyTime> loaded_at;
  {
    std::vector<std::string> databases;
    if (splits()) {
      databases = list_databases();
    }
    std::lock_guard lock(mu_);
    catalog_wanted_.insert(databases.begin(), databases.end());
    if (catalog_wanted_.empty()) {
      catalogs_ready_ = true;
    }
  }
  for (;;) {
    std::vector<std::string> todo;
    {
      std::unique_lock lock(mu_);
      auto due = [&] {
        const auto now = Clock::now();
        for (const auto& db : catalog_wanted_) {
          auto it = loaded_at.find(db);
          if (it == loaded_at.end() ||
              now - it->second >= milliseconds(cfg_.routing.catalog_refresh_ms)) {
            return true;
          }
        }
        return false;
      };
      // A reload asked for within a second of the last one waits for the second to pass
      // (sessions ask after every unattributed write, DDL among them).
      auto reload_due = [&] {
        return catalogs_stale_ && Clock::now() - catalogs_loaded_at_ >= std::chrono::seconds(1);
      };
      wake_.wait_for(lock, milliseconds(std::min(cfg_.routing.catalog_refresh_ms, 1000)),
                     [&] { return stopping_ || reload_due() || due(); });
      if (stopping_) {
        return;
      }
      if (reload_due()) {
        catalogs_stale_ = false;
        catalogs_loaded_at_ = Clock::now();
        loaded_at.clear();  // everything is due now
      }
      const auto now = Clock::now();
      for (const auto& db : catalog_wanted_) {
        auto it = loaded_at.find(db);
        if (it == loaded_at.end() ||
            now - it->second >= milliseconds(cfg_.routing.catalog_refresh_ms)) {
          todo.push_back(db);
        }
      }
    }
    // Any instance can read the catalog (it is replicated): the writer, or else one that is up.
    const EndpointState* source = writer();
    for (size_t i = 0, n = instance_count(); i < n; ++i) {
      if (source == nullptr && instances_[i]->up.load() && !instances_[i]->removed.load()) {
        source = instances_[i].get();
      }
    }
    if (source == nullptr && instance_count() > 0) {
      source = instances_[0].get();
    }
    if (source == nullptr) {
      // aurora: no instance found yet. Try again in a while.
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, milliseconds(live().interval_ms.load()), [&] { return stopping_; });
      continue;
    }
    for (const auto& db : todo) {
      const auto params = conn_params(source->endpoint, db, "pglane-catalog");
      const auto deadline = Clock::now() + milliseconds(std::max(live().timeout_ms.load(), 5000));
      Probe probe;
      std::string error;
      PGresult* r = nullptr;
      if (probe.connect(params, deadline, error)) {
        r = probe.query(kCatalogSql, deadline, error);
      }
      loaded_at[db] = Clock::now();
      if (r == nullptr) {
        PGLANE_LOG_WARN(
            "cannot read function volatility of database %s: %s (calls of "
            "functions go to the writer until it can be read)",
            db, trim_newline(error));
        continue;
      }
      auto catalog = std::make_shared<routing::FunctionCatalog>();
      for (int i = 0; i < PQntuples(r); ++i) {
        catalog->add(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0] == 't',
                     PQgetvalue(r, i, 3)[0] == 't');
      }
      PQclear(r);
      r = probe.query(kRelationsSql, deadline, error);
      if (r == nullptr) {
        // Without it, writes through triggers and reads of views are not connected to other
        // tables' floors (as before it existed); try again at the next refresh.
        PGLANE_LOG_WARN("cannot read the relations of database %s: %s", db, trim_newline(error));
      }
      if (r != nullptr) {
        catalog->relations().set_loaded();
      }
      for (int i = 0; r != nullptr && i < PQntuples(r); ++i) {
        const char kind = PQgetvalue(r, i, 1)[0];
        if (kind == 'c') {
          catalog->relations().add_cascading(lower(PQgetvalue(r, i, 0)));
        } else if (kind == 'x') {
          catalog->relations().add_uncacheable(lower(PQgetvalue(r, i, 0)));
        } else {
          catalog->relations().add_view_base(lower(PQgetvalue(r, i, 0)),
                                             lower(PQgetvalue(r, i, 2)));
        }
      }
      PQclear(r);
      PGLANE_LOG_DEBUG("loaded volatility of %zu functions of database %s", catalog->size(), db);
      std::lock_guard lock(mu_);
      catalogs_[db] = std::move(catalog);
    }
    catalogs_ready_ = true;  // every database known at startup has been tried
  }
}

}  // namespace pglane::proxy
