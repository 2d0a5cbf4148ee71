#pragma once

// Scripted flow tests: "after these actions, this must be true". A script
// (YAML, docs/flow-tests.md, schemas/flowtest.schema.json) names the
// definitions it runs on and lists tests; each test submits cases, acts as
// staff or applicants, moves a virtual clock by working days, fires due
// timers, and states what must hold (status, outcome, open tasks and their
// assignees, warnings, history). Every test runs on a fresh in-memory
// engine with a ManualClock, through the public Engine API.

#include <onestop/definitions.hpp>
#include <onestop/error.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace onestop {

// One expectation that did not hold, or a step that could not be done.
// Rendered as `file:line: message`; the message says what was expected and
// what was found.
struct FlowTestFailure {
  SourceLocation where;  // the step or expectation in the script
  std::string message;
  // Not the script's or the definitions' doing: the engine or the runner
  // failed in a way it never should (an exception other than
  // onestop::Error); the message says "internal error". A bug to report.
  bool internal = false;

  std::string to_string() const;
};

// The result of one test of a script.
struct FlowTestResult {
  std::string name;
  SourceLocation where;  // the test in the script
  std::vector<FlowTestFailure> failures;

  bool passed() const noexcept { return failures.empty(); }
};

// What running one or more scripts gives.
struct FlowTestReport {
  std::vector<FlowTestResult> results;  // in script order
  // Scripts that could not run at all: malformed (each problem with
  // file:line:col), definitions that do not load. Nothing of such a script
  // runs; each such script counts as one failure.
  std::vector<Diagnostic> errors;
  std::size_t malformed_scripts = 0;

  std::size_t passed() const noexcept;
  // Failed tests plus malformed scripts.
  std::size_t failed() const noexcept;
  // Every script ran and every test passed.
  bool ok() const noexcept { return failed() == 0; }
  // "N passed, M failed".
  std::string summary() const;
  // Appends another report (several scripts).
  void merge(FlowTestReport other);
};

// Options for running flow tests.
struct FlowTestOptions {
  // Run only tests whose name contains this text (all when empty).
  std::string name_filter;
};

// Runs every test of one script file. Never throws for bad input: a
// malformed script or broken definitions end up in `errors`.
FlowTestReport run_flow_tests(const std::filesystem::path& script, const FlowTestOptions& options = {});

// Runs several scripts, one report.
FlowTestReport run_flow_tests(const std::vector<std::filesystem::path>& scripts,
                              const FlowTestOptions& options = {});

// Runs a script given as text (hosts, tests). `script.name` is used in
// messages; relative `definitions:` paths resolve against `base_dir`.
FlowTestReport run_flow_tests(const Source& script, const std::filesystem::path& base_dir,
                              const FlowTestOptions& options = {});

}  // namespace onestop
