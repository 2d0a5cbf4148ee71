#pragma once

// `onestop test FILE|DIR...`: runs scripted flow tests (docs/flow-tests.md).

namespace CLI {
class App;
}

// Adds the `test` subcommand to the CLI. It prints `PASS name` or `FAIL name`
// with the indented reasons for every test, then `N passed, M failed`; it
// exits 0 when every test passed, 1 when one failed, 2 when a script is
// malformed (each problem printed as file:line:col) or nothing ran (no
// scripts, or no test name contains the --name text).
void add_test_command(CLI::App& app);
