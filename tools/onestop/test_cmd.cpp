// onestop test FILE|DIR... [--name TEXT]
//   runs flow-test scripts; a directory means every *.yaml / *.yml under it
//   whose modeline names flowtest.schema.json.

#include "test_cmd.hpp"

#include <onestop/flowtest.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Options {
  std::vector<std::string> paths;
  std::string name;
};

// Whether the first lines of a file carry a modeline naming the flow-test schema.
bool is_flow_test(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < 5 && std::getline(in, line); ++i) {
    if (line.find("yaml-language-server:") != std::string::npos &&
        line.find("flowtest.schema.json") != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::vector<fs::path> scripts(const std::vector<std::string>& paths) {
  std::vector<fs::path> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        const auto ext = it->path().extension();
        if (it->is_regular_file(ec) && (ext == ".yaml" || ext == ".yml") && is_flow_test(it->path())) {
          found.push_back(it->path());
        }
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.emplace_back(p);  // a missing file is reported by the runner
    }
  }
  return out;
}

int run(const Options& o) {
  const auto files = scripts(o.paths);
  if (files.empty()) {
    std::cerr << "onestop test: no flow-test scripts found (a script's first lines name flowtest.schema.json)\n";
    std::cout << "0 passed, 0 failed\n";
    return 2;
  }
  onestop::FlowTestOptions options;
  options.name_filter = o.name;
  const onestop::FlowTestReport report = onestop::run_flow_tests(files, options);
  for (const auto& e : report.errors) std::cout << e.to_string() << '\n';
  std::string file;  // with several scripts, each one's tests under its name
  for (const auto& r : report.results) {
    if (files.size() > 1 && r.where.file != file) {
      file = r.where.file;
      std::cout << file << '\n';
    }
    std::cout << (r.passed() ? "PASS " : "FAIL ") << r.name << '\n';
    for (const auto& f : r.failures) std::cout << "    " << f.to_string() << '\n';
  }
  if (report.malformed_scripts > 0) {
    std::cout << fmt::format("{} script{} could not run (see the errors above)\n", report.malformed_scripts,
                             report.malformed_scripts == 1 ? "" : "s");
  }
  std::cout << report.summary() << '\n';
  std::cout.flush();
  if (report.malformed_scripts > 0) return 2;
  if (report.results.empty() && !o.name.empty()) {
    // A mistyped filter must not pass as a green run.
    std::cerr << fmt::format("onestop test: no test name contains '{}' (--name)\n", o.name);
    return 2;
  }
  return report.ok() ? 0 : 1;
}

}  // namespace

void add_test_command(CLI::App& app) {
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("test", "Run scripted flow tests and report N passed, M failed");
  cmd->add_option("scripts", options->paths, "flow-test scripts, or directories holding them")->required();
  cmd->add_option("--name", options->name, "run only tests whose name contains this text");
  cmd->callback([options] {
    const int code = run(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}
