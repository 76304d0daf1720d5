// pglane --check-config: exit status and the message naming file, line and key.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

struct CommandResult {
  int status = -1;
  std::string output;
};

CommandResult run_check_config(const std::string& path) {
  std::string cmd = std::string(PGLANE_BINARY) + " --check-config '" + path + "' 2>&1";
  CommandResult run;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    return run;
  }
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    run.output.append(buf, n);
  }
  int st = pclose(f);
  run.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return run;
}

TEST(CheckConfig, ValidConfigExitsZero) {
  const std::string path = write_config(ProxySettings{}, 6543, "check-valid");
  CommandResult run = run_check_config(path);
  EXPECT_EQ(run.status, 0) << run.output;
}

TEST(CheckConfig, UnknownKeyExitsTwoNamingFileLineAndKey) {
  const std::string valid = write_config(ProxySettings{}, 6543, "check-unknown");
  std::ifstream in(valid);
  std::ostringstream out;
  std::string line;
  int lineno = 0;
  int bad_line = 0;
  while (std::getline(in, line)) {
    out << line << "\n";
    ++lineno;
    if (line == "[pool]") {
      out << "sise = 20\n";
      bad_line = ++lineno;
    }
  }
  ASSERT_GT(bad_line, 0);
  in.close();
  {
    std::ofstream f(valid, std::ios::trunc);
    f << out.str();
  }
  CommandResult run = run_check_config(valid);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find(valid + ":" + std::to_string(bad_line)), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("pool.sise: unknown key (did you mean \"size\"?)"), std::string::npos)
      << run.output;
}

// Every problem at once, one per line, each with the file, line and key; the typo first.
TEST(CheckConfig, EveryProblemIsReportedAtOnce) {
  const std::string path = sandbox_dir() + "/check-many.toml";
  {
    std::ofstream f(path, std::ios::trunc);
    f << "[proxy]\nlisten_port_typo = 1\nusers_file = \"" << env("USERS_FILE")
      << "\"\nworkers = -1\n[[regions]]\nname = \"a\"\nwriter = \"h\"\n";
  }
  CommandResult run = run_check_config(path);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_EQ(run.output,
            "pglane: " + path +
                ":2: proxy.listen_port_typo: unknown key (did you mean "
                "\"listen_port\"?)\npglane: " +
                path + ":4: proxy.workers: must be between 0 and 256, got -1\npglane: " + path +
                ":7: regions[0].writer: expected \"host:port\" (or \"[v6addr]:port\"), got "
                "\"h\" (the port is required)\n");
}

}  // namespace
}  // namespace pglane::itest
