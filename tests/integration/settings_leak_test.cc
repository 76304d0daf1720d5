// Custom (placeholder) settings in transaction pooling: a tenant setting read by a row-level
// security policy must never reach another client, and must stay with the client that set it.
// PostgreSQL hides placeholders from pg_settings and SHOW ALL, so pglane tracks them from the
// statements (TESTING.md C18 with a tenant setting; E27 is the same hazard for the cache).
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

ProxySettings pool_of(int size) {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = size;
  s.queue_timeout_ms = 30000;
  s.backend_tls_mode = "disable";
  return s;
}

// A table whose policy shows a role only the rows of current_setting('app.tenant').
void create_tenant_table() {
  Conn direct = connect_direct();
  exec_ok(direct.get(), "DROP TABLE IF EXISTS tenant_rows");
  exec_ok(direct.get(), "DROP PROCEDURE IF EXISTS set_tenant_proc(text)");
  exec_ok(direct.get(), "DROP FUNCTION IF EXISTS set_tenant_fn(text)");
  exec_ok(direct.get(),
          "CREATE TABLE tenant_rows (tenant text, v int);"
          "INSERT INTO tenant_rows VALUES ('t1', 1), ('t2', 2);"
          "ALTER TABLE tenant_rows ENABLE ROW LEVEL SECURITY;"
          "CREATE POLICY by_tenant ON tenant_rows USING "
          "(tenant = current_setting('app.tenant', true));"
          "GRANT SELECT ON tenant_rows TO pglane_app;"
          "CREATE PROCEDURE set_tenant_proc(t text) LANGUAGE plpgsql AS "
          "$$ BEGIN PERFORM set_config('app.tenant', t, false); END $$;"
          "GRANT EXECUTE ON PROCEDURE set_tenant_proc(text) TO pglane_app;"
          "CREATE OR REPLACE FUNCTION set_tenant_fn(t text) RETURNS text LANGUAGE plpgsql AS "
          "$$ BEGIN PERFORM set_config('app.tenant', t, false); RETURN t; END $$;"
          "GRANT EXECUTE ON FUNCTION set_tenant_fn(text) TO pglane_app");
}

constexpr const char* kProbe =
    "SELECT coalesce(current_setting('app.tenant', true), '<null>') || '|' || "
    "coalesce((SELECT string_agg(tenant, ',' ORDER BY tenant) FROM tenant_rows), '')";

// The probe through the simple or the extended protocol (unnamed statement).
std::string probe(PGconn* c, bool extended) {
  if (!extended) {
    return query_value(c, kProbe);
  }
  Result r(PQexecParams(c, kProbe, 0, nullptr, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
  return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

void set_tenant(PGconn* c, bool extended, const char* tenant) {
  if (!extended) {
    exec_ok(c, std::string("SET app.tenant = '") + tenant + "'");
    return;
  }
  const char* values[] = {tenant};
  Result r(PQexecParams(c, "SELECT set_config('app.tenant', $1, false)", 1, nullptr, values,
                        nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
}

// True when the other client sees no tenant: the placeholder is undefined or empty.
bool sees_no_tenant(const std::string& v) {
  return v == "<null>|" || v == "|";
}

TEST(CustomSettings, TenantNeverLeaksPoolOfOneBothDirectionsBothProtocols) {
  create_tenant_table();
  Proxy proxy(pool_of(1));
  START_PROXY(proxy);
  for (bool extended : {false, true}) {
    for (bool a_sets : {true, false}) {
      SCOPED_TRACE(std::string(extended ? "extended" : "simple") + (a_sets ? ", a" : ", b") +
                   " sets the tenant");
      Conn a = connect_ok(proxy.conninfo());
      Conn b = connect_ok(proxy.conninfo());
      PGconn* setter = a_sets ? a.get() : b.get();
      PGconn* other = a_sets ? b.get() : a.get();
      // The other client goes first so the only server connection has served it already.
      EXPECT_TRUE(sees_no_tenant(probe(other, extended)));
      set_tenant(setter, extended, "t2");
      for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(probe(setter, extended), "t2|t2") << "round " << i;
        EXPECT_TRUE(sees_no_tenant(probe(other, extended))) << "round " << i;
      }
      exec_ok(setter, "RESET app.tenant");
      EXPECT_TRUE(sees_no_tenant(probe(setter, extended)));
      set_tenant(setter, extended, "t1");
      EXPECT_EQ(probe(setter, extended), "t1|t1");
      EXPECT_TRUE(sees_no_tenant(probe(other, extended)));
    }
  }
}

TEST(CustomSettings, RolledBackAndLocalSettingsAreNotKept) {
  create_tenant_table();
  Proxy proxy(pool_of(1));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  exec_ok(a.get(), "SET app.tenant = 't1'");
  exec_ok(a.get(), "BEGIN; SET app.tenant = 't2'; ROLLBACK");
  EXPECT_EQ(probe(a.get(), false), "t1|t1");
  exec_ok(a.get(), "BEGIN; SET LOCAL app.tenant = 't2'; COMMIT");
  EXPECT_EQ(probe(a.get(), false), "t1|t1");
  EXPECT_TRUE(sees_no_tenant(probe(b.get(), false)));
}

TEST(CustomSettings, DoBlockSettingIsTrackedAndProcedureSettingNeverLeaks) {
  create_tenant_table();
  Proxy proxy(pool_of(1));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  exec_ok(a.get(), "DO $$ BEGIN PERFORM set_config('app.tenant', 't2', false); END $$");
  EXPECT_EQ(probe(a.get(), false), "t2|t2");
  EXPECT_TRUE(sees_no_tenant(probe(b.get(), false)));
  EXPECT_EQ(probe(a.get(), false), "t2|t2");
  // A procedure sets a name pglane cannot see: the server is reset before anyone else uses it.
  exec_ok(b.get(), "CALL set_tenant_proc('t1')");
  EXPECT_EQ(probe(a.get(), false), "t2|t2");
  for (int i = 0; i < 3; ++i) {
    Conn c = connect_ok(proxy.conninfo());
    EXPECT_TRUE(sees_no_tenant(probe(c.get(), false)));
  }
}

TEST(CustomSettings, StartupOptionTenantStaysWithItsClient) {
  create_tenant_table();
  Proxy proxy(pool_of(1));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo("options='-c app.tenant=t2'"));
  Conn b = connect_ok(proxy.conninfo());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(probe(a.get(), i % 2 == 1), "t2|t2") << "round " << i;
    EXPECT_TRUE(sees_no_tenant(probe(b.get(), i % 2 == 1))) << "round " << i;
  }
  exec_ok(a.get(), "RESET app.tenant");  // back to the startup value, as on a direct connection
  EXPECT_EQ(probe(a.get(), false), "t2|t2");
}

TEST(CustomSettings, TenantSetInsideAHelperFunctionNeverLeaks) {
  create_tenant_table();
  Proxy proxy(pool_of(1));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  EXPECT_TRUE(sees_no_tenant(probe(b.get(), false)));
  for (bool extended : {false, true}) {
    if (extended) {
      const char* values[] = {"t2"};
      Result r(PQexecParams(a.get(), "SELECT set_tenant_fn($1)", 1, nullptr, values, nullptr,
                            nullptr, 0));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(a.get());
    } else {
      exec_ok(a.get(), "SELECT set_tenant_fn('t2')");
    }
    // pglane cannot see the name the function set: the server is reset before b gets it.
    EXPECT_TRUE(sees_no_tenant(probe(b.get(), extended)));
  }
}

TEST(CustomSettings, EmptyValueIsKeptAndResetReturnsToTheStartupValue) {
  create_tenant_table();
  Proxy proxy(pool_of(1));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo("options='-c app.tenant=t2'"));
  Conn b = connect_ok(proxy.conninfo());
  exec_ok(a.get(), "SET app.tenant = ''");
  EXPECT_TRUE(sees_no_tenant(probe(b.get(), false)));
  EXPECT_EQ(probe(a.get(), false), "|");  // '' as on a direct connection, not the startup t2
  exec_ok(a.get(), "RESET ALL");
  EXPECT_TRUE(sees_no_tenant(probe(b.get(), false)));
  EXPECT_EQ(probe(a.get(), false), "t2|t2");
}

TEST(CustomSettings, ComputedNamePinsTheClient) {
  create_tenant_table();
  Proxy proxy(pool_of(2));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  const char* values[] = {"app.tenant", "t2"};
  Result r(PQexecParams(a.get(), "SELECT set_config($1, $2, false)", 2, nullptr, values, nullptr,
                        nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(a.get());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(probe(a.get(), true), "t2|t2");
    EXPECT_TRUE(sees_no_tenant(probe(b.get(), true)));
  }
}

}  // namespace
}  // namespace pglane::itest
