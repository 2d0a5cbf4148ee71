#include "simulate_cmd.hpp"

#include <onestop/onestop.hpp>
#include <onestop/simulation.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

struct Options {
  std::string scenario;
  std::vector<std::string> definitions;
  std::string store = "memory:";
  std::string json;
  std::string csv;
  std::string html;
  std::string compare;
  std::string compare_store = "memory:";
  std::uint64_t seed = 0;
  bool seed_given = false;
  bool quiet = false;
  std::size_t batch = 0;  // 0: 1 for memory:, 2048 for persistent stores
};

struct Loaded {
  onestop::Scenario scenario;
  std::shared_ptr<const onestop::Catalog> catalog;
};

// The scenario and its definitions (the command line's paths, else the scenario's).
Loaded load(const std::string& file, const std::vector<std::string>& paths) {
  Loaded l{onestop::load_scenario(file), nullptr};
  std::vector<std::filesystem::path> defs(paths.begin(), paths.end());
  if (defs.empty()) defs = l.scenario.definitions;
  if (defs.empty()) {
    throw onestop::Error(onestop::ErrorCode::invalid_input,
                         fmt::format("{}: no definitions: list them under 'definitions:' or on the command line", file));
  }
  auto result = onestop::load_catalog(defs);
  std::size_t errors = 0;
  for (const auto& d : result.diagnostics) {
    if (d.severity == onestop::Severity::error) {
      std::cerr << d.to_string() << '\n';
      ++errors;
    }
  }
  if (errors > 0) {
    throw onestop::Error(onestop::ErrorCode::invalid_input, fmt::format("the definitions have {} error{}", errors, errors == 1 ? "" : "s"));
  }
  l.catalog = result.catalog;
  return l;
}

// The database file a store URI opens, spelt one way (relative or absolute,
// with options or without); none for stores private to the run (memory:,
// sqlite::memory:).
std::optional<std::filesystem::path> store_file(std::string_view uri) {
  if (uri.substr(0, 7) != "sqlite:") return std::nullopt;
  uri.remove_prefix(7);
  if (uri.substr(0, 2) == "//") uri.remove_prefix(2);
  uri = uri.substr(0, uri.find('?'));
  if (uri.empty() || uri == ":memory:") return std::nullopt;
  std::error_code ec;
  auto path = std::filesystem::weakly_canonical(std::filesystem::absolute(std::filesystem::path(uri)), ec);
  if (ec) return std::filesystem::absolute(std::filesystem::path(uri)).lexically_normal();
  return path;
}

// Opens a store a run writes into: it must hold no cases. Done for both
// runs before either starts, so a bad URI or a used store is exit 1 and
// no run is wasted.
std::shared_ptr<onestop::Store> open_empty(const std::string& uri, const char* option) {
  auto store = onestop::open_store(uri);
  if (!store->case_ids().empty()) {
    throw onestop::Error(onestop::ErrorCode::invalid_input,
                         fmt::format("{} {}: the store already holds cases; simulate into an empty store", option, uri));
  }
  return store;
}

onestop::SimulationReport run(const Loaded& l, const Options& o, std::shared_ptr<onestop::Store> opened,
                              const std::string& store, const char* label) {
  onestop::SimulationOptions so;
  so.store = std::move(opened);
  so.batch = o.batch != 0 ? o.batch : store.rfind("memory:", 0) == 0 ? 1 : 2048;
  if (o.seed_given) so.seed = o.seed;
  const bool tty = !o.quiet && isatty(2) != 0;
  if (tty) {
    so.progress = [label](double share) { std::fprintf(stderr, "\r%s%3.0f %%", label, 100 * share); };
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto report = onestop::simulate(l.scenario, l.catalog, so);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty) std::fprintf(stderr, "\r");
  if (!o.quiet) {
    std::cerr << fmt::format("{}{} events ({} actions) in {:.2f} s: {:.0f} events/s on store {}\n", label, report.events,
                             report.actions, seconds, static_cast<double>(report.events) / std::max(seconds, 1e-9), store);
  }
  return report;
}

void write(const std::string& path, const std::string& text, const char* what, bool quiet) {
  if (path == "-") {
    std::cout << text;
    return;
  }
  std::ofstream out(path, std::ios::binary);
  if (out) out << text;
  if (out) out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write {} to {}: {}", what, path, std::strerror(errno)));
  if (!quiet) std::cerr << fmt::format("{} written to {}\n", what, path);
}

void simulate_command(const Options& o) {
  int code = 2;
  try {
    code = 1;
    // Standard output takes one report: two would run into each other
    // (JSON followed by CSV is neither).
    std::vector<std::string> to_stdout;
    for (const auto& [option, path] : {std::pair{"--json", &o.json}, {"--csv", &o.csv}, {"--html", &o.html}}) {
      if (*path == "-") to_stdout.push_back(option);
    }
    if (to_stdout.size() > 1) {
      throw onestop::Error(onestop::ErrorCode::invalid_input,
                           fmt::format("{} and {} both write to standard output ('-'); send one of them to a file",
                                       to_stdout[0], to_stdout[1]));
    }
    const Loaded a = load(o.scenario, o.definitions);
    std::optional<Loaded> b;
    if (!o.compare.empty()) b = load(o.compare, o.definitions);
    if (b && !o.csv.empty()) {
      // The CSV holds one run's figures (section,key,metric,value): a
      // comparison in it would be run A alone, silently.
      throw onestop::Error(onestop::ErrorCode::invalid_input,
                           "--csv writes one run: it does not go with --compare (use --json or --html for both runs)");
    }
    onestop::check_scenario(a.scenario, a.catalog);  // a scenario that does not fit its definitions: exit 1
    if (b) onestop::check_scenario(b->scenario, b->catalog);
    // In-memory stores are each their own; files are compared as files.
    const auto file_a = store_file(o.store);
    if (b && file_a && file_a == store_file(o.compare_store)) {
      throw onestop::Error(onestop::ErrorCode::invalid_input,
                           fmt::format("--store {} and --compare-store {} are the same file: each run needs a store of its own",
                                       o.store, o.compare_store));
    }
    auto store_a = open_empty(o.store, "--store");
    std::shared_ptr<onestop::Store> store_b;
    if (b) store_b = open_empty(o.compare_store, "--compare-store");
    code = 2;
    const auto ra = run(a, o, std::move(store_a), o.store, b ? "A: " : "");
    std::optional<onestop::SimulationReport> rb;
    if (b) rb = run(*b, o, std::move(store_b), o.compare_store, "B: ");
    const bool stdout_taken = o.json == "-" || o.csv == "-" || o.html == "-";
    if (!stdout_taken) std::cout << (rb ? onestop::compare_text(ra, *rb) : onestop::report_text(ra));
    if (!o.json.empty()) write(o.json, rb ? onestop::compare_json(ra, *rb) : onestop::report_json(ra), "JSON report", o.quiet);
    if (!o.csv.empty()) write(o.csv, onestop::report_csv(ra), "CSV report", o.quiet);
    if (!o.html.empty()) {
      write(o.html, onestop::report_html(ra, *a.catalog, rb ? &*rb : nullptr, b ? b->catalog.get() : nullptr), "HTML report",
            o.quiet);
    }
  } catch (const onestop::Error& e) {
    // Before a run starts (a bad scenario or definitions, a store that
    // cannot be opened or already holds cases): 1; once one runs: 2.
    std::cerr << "onestop simulate: " << e.what() << '\n';
    throw CLI::RuntimeError(code);
  } catch (const std::exception& e) {
    std::cerr << "onestop simulate: " << e.what() << '\n';
    throw CLI::RuntimeError(2);
  }
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("simulate", "Run a scenario through the engine on virtual time and report KPIs");
  cmd->add_option("SCENARIO", o->scenario, "scenario YAML file")->required()->check(CLI::ExistingFile);
  cmd->add_option("DEFINITIONS", o->definitions, "definition files or directories (default: the scenario's 'definitions')");
  cmd->add_option("--store", o->store, "store URI: memory: or sqlite:PATH (must hold no cases)")->capture_default_str();
  cmd->add_option("--json", o->json, "write the report as JSON to this file ('-': standard output)");
  cmd->add_option("--csv", o->csv, "write the report as CSV to this file ('-': standard output)");
  cmd->add_option("--html", o->html, "write a self-contained HTML report to this file");
  cmd->add_option("--compare", o->compare, "a second scenario (what-if) run and shown side by side")->check(CLI::ExistingFile);
  cmd->add_option("--compare-store", o->compare_store, "store URI for the second scenario")->capture_default_str();
  auto* seed = cmd->add_option("--seed", o->seed, "random seed (overrides the scenarios')")
                   ->check(CLI::Validator(
                       [](std::string& s) {
                         // Digits only, and no more than 64 bits: the option's own
                         // conversion (strtoull) wraps "-1" and clamps what is too big.
                         std::uint64_t v = 0;
                         const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
                         const bool whole = !s.empty() && ec == std::errc() && end == s.data() + s.size();
                         return whole ? std::string() : "'" + s + "' is not a whole number from 0 to 18446744073709551615";
                       },
                       "", "seed"));
  cmd->add_option("--batch", o->batch,
                  "commits per store transaction (1: every action on its own, as live; more: written behind on a second "
                  "thread; default 1 for memory:, 2048 otherwise)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  cmd->add_flag("-q,--quiet", o->quiet, "no progress or timing on standard error");
  cmd->callback([o, seed] {
    o->seed_given = seed->count() > 0;
    simulate_command(*o);
  });
}
