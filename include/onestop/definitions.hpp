#pragma once

// Loading definitions: YAML files or directories in, an immutable Catalog
// plus every problem found out. Nothing here throws for bad input.

#include <onestop/error.hpp>
#include <onestop/model.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace onestop {

// Limits that keep hostile or broken input cheap. Defaults suit real use.
struct LoadOptions {
  // Files larger than this are refused with a diagnostic.
  std::size_t max_file_bytes = 64u << 20;
  // YAML nesting deeper than this is refused.
  int max_depth = 200;
  // Total YAML nodes per file, counting every alias expansion (stops
  // "billion laughs" files).
  std::size_t max_nodes = 4'000'000;
  // Run the graph checks (reachability, split/join soundness, limits).
  bool check_graphs = true;
};

// What load_catalog returns. `catalog` is always set (possibly partial when
// there are errors); use it only when ok().
struct LoadResult {
  std::shared_ptr<const Catalog> catalog;
  std::vector<Diagnostic> diagnostics;  // sorted by file, line, column
  bool ok() const noexcept { return !has_errors(diagnostics); }
};

// Loads every .yaml/.yml file in `paths` (directories recursively, in name
// order), checks the whole set, and reports every problem at once.
LoadResult load_catalog(const std::vector<std::filesystem::path>& paths,
                        const LoadOptions& options = {});

// One in-memory source: a name for diagnostics and its YAML text.
struct Source {
  std::string name;
  std::string text;
};

// Loads and checks definitions given as text (tests, hosts that keep
// definitions in a database).
LoadResult load_catalog(const std::vector<Source>& sources, const LoadOptions& options = {});

// Runs only the checks on an already built catalog (hosts that build
// definitions in code). Diagnostics as for load_catalog.
std::vector<Diagnostic> check_catalog(const Catalog& catalog);

// Options for render_dot.
struct DotOptions {
  bool show_limits = true;   // time limits in node labels
  bool show_guards = true;   // guards as edge labels
  bool show_returns = true;  // declared returns as dashed edges
  std::string rankdir = "TB";
};

// Renders a flow as Graphviz DOT: node kinds drawn distinctly, limits and
// guards as labels. The catalog resolves subflow item names.
std::string render_dot(const Flow& flow, const Catalog& catalog, const DotOptions& options = {});

}  // namespace onestop
