// pgjdbc smoke run for tests/integration/jdbc_test.cc, started as a single-file program:
//   java -cp postgresql.jar JdbcSmoke.java URL USER PASSWORD TABLE
// Prints one "OK ..." line per step; any failure prints its stack trace and exits 1.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class JdbcSmoke {
  static void check(boolean ok, String what) {
    if (!ok) {
      throw new IllegalStateException("check failed: " + what);
    }
  }

  static long longValue(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      check(rs.next(), "a row from " + sql);
      return rs.getLong(1);
    }
  }

  public static void main(String[] args) {
    if (args.length != 4) {
      System.err.println("usage: JdbcSmoke URL USER PASSWORD TABLE");
      System.exit(2);
    }
    final String table = args[3];
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    try (Connection c = DriverManager.getConnection(args[0], props)) {
      System.out.println("OK connect " + c.getMetaData().getDatabaseProductVersion());

      // prepareThreshold=1: the first execution already uses a named server-side statement.
      try (PreparedStatement ps = c.prepareStatement(
               "SELECT ?::int + 1, 'smoke_marker', current_setting('DateStyle')")) {
        for (int i = 0; i < 500; ++i) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            check(rs.next(), "prepared row " + i);
            check(rs.getInt(1) == i + 1, "prepared result " + i);
            check(rs.getString(3).startsWith("ISO"), "DateStyle " + rs.getString(3));
          }
        }
        // One transaction is one server: the statement must be prepared there under some name.
        // (The pattern is built with || so that this query does not match itself.)
        c.setAutoCommit(false);
        ps.setInt(1, 41);
        try (ResultSet rs = ps.executeQuery()) {
          check(rs.next() && rs.getInt(1) == 42, "prepared inside a transaction");
        }
        long named = longValue(c,
            "SELECT count(*) FROM pg_prepared_statements"
                + " WHERE statement LIKE '%smoke' || '\\_marker%'");
        check(named >= 1, "a named prepared statement on the server, found " + named);
        c.commit();
        c.setAutoCommit(true);
        System.out.println("OK prepared 501 executions, named on the server");
      }

      try (Statement st = c.createStatement()) {
        st.execute("DROP TABLE IF EXISTS " + table);
        st.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, name text NOT NULL)");
      }
      try (PreparedStatement ins =
               c.prepareStatement("INSERT INTO " + table + " (id, name) VALUES (?, ?)")) {
        for (int i = 1; i <= 1000; ++i) {
          ins.setInt(1, i);
          ins.setString(2, "row " + i);
          ins.addBatch();
        }
        int[] counts = ins.executeBatch();
        int total = 0;
        for (int n : counts) {
          total += n;
        }
        check(counts.length == 1000 && total == 1000, "batch counts " + total);
      }
      check(longValue(c, "SELECT count(*) FROM " + table) == 1000, "1000 rows after batch");
      check(longValue(c, "SELECT sum(id) FROM " + table) == 500500, "ids 1..1000");
      System.out.println("OK batch 1000 inserts");

      c.setAutoCommit(false);
      long xid = longValue(c, "SELECT txid_current()");
      try (PreparedStatement ins =
               c.prepareStatement("INSERT INTO " + table + " (id, name) VALUES (?, 'txn')")) {
        ins.setInt(1, 1001);
        ins.executeUpdate();
        check(longValue(c, "SELECT txid_current()") == xid, "one transaction, one xid");
        c.commit();
        ins.setInt(1, 1002);
        ins.executeUpdate();
        check(longValue(c, "SELECT count(*) FROM " + table) == 1002, "own insert visible");
        c.rollback();
      }
      c.setAutoCommit(true);
      check(longValue(c, "SELECT count(*) FROM " + table) == 1001, "commit kept, rollback undone");
      check(longValue(c, "SELECT count(*) FROM " + table + " WHERE id = 1002") == 0,
          "rolled-back row gone");
      System.out.println("OK commit and rollback");

      DatabaseMetaData md = c.getMetaData();
      String version = md.getDatabaseProductVersion();
      check(version.matches("\\d+(\\.\\d+)*.*"), "product version " + version);
      int tables = 0;
      try (ResultSet rs = md.getTables(null, "public", table, new String[] {"TABLE"})) {
        while (rs.next()) {
          check(rs.getString("TABLE_NAME").equals(table), "table name " + rs.getString(3));
          ++tables;
        }
      }
      check(tables == 1, "getTables found " + tables);
      List<String> columns = new ArrayList<>();
      try (ResultSet rs = md.getColumns(null, "public", table, null)) {
        while (rs.next()) {
          columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
        }
      }
      check(columns.equals(List.of("id:int4", "name:text")), "getColumns " + columns);
      System.out.println("OK metadata " + version + " " + columns);

      try (Statement st = c.createStatement()) {
        st.execute("DROP TABLE " + table);
      }
      System.out.println("OK done");
    } catch (Exception e) {
      e.printStackTrace();
      System.exit(1);
    }
  }
}
