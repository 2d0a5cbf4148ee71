// The onestop command line: a thin shell over the library.
//   onestop validate PATH...            report every problem in a set of definitions
//   onestop graph PATH... [--flow ID]   render a flow as Graphviz DOT or SVG
//   onestop summary PATH...             themes and items: departments, limits
//   onestop calendar days|due ...       check a working-day calendar by hand
//   onestop export|import|versions|stats --store URI ...   cases in a store
//   onestop test FILE|DIR...            run scripted flow tests
//   onestop simulate SCENARIO [DEFS...]  simulate cases on virtual time, report KPIs

#include "calendar_cmd.hpp"
#include "simulate_cmd.hpp"
#include "store_cmd.hpp"
#include "test_cmd.hpp"

#include <onestop/onestop.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <unistd.h>

namespace {

using onestop::Catalog;
using onestop::Diagnostic;
using onestop::Severity;

std::vector<std::filesystem::path> to_paths(const std::vector<std::string>& in) {
  return {in.begin(), in.end()};
}

void print_diagnostics(const std::vector<Diagnostic>& diagnostics, bool warnings) {
  for (const auto& d : diagnostics) {
    if (d.severity != Severity::error && !warnings) continue;
    std::cerr << d.to_string() << '\n';
  }
}

int validate(const std::vector<std::string>& paths, const std::string& format) {
  const auto result = onestop::load_catalog(to_paths(paths));
  std::size_t errors = 0;
  std::size_t warnings = 0;
  for (const auto& d : result.diagnostics) (d.severity == Severity::error ? errors : warnings) += 1;
  if (format == "json") {
    std::cout << onestop::diagnostics_to_json(result.diagnostics);
  } else {
    for (const auto& d : result.diagnostics) std::cout << d.to_string() << '\n';
    const Catalog& c = *result.catalog;
    std::cout << fmt::format("{} error{}, {} warning{} ({} items, {} flows, {} themes, {} calendars, {} departments)\n",
                             errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s", c.items.size(),
                             c.flows.size(), c.themes.size(), c.calendars.size(), c.departments.size());
  }
  return errors == 0 ? 0 : 1;
}

// The flow to draw: --flow names a flow or a theme (its flow); without it the
// only theme's flow, else the only flow. --flow-version picks a version of
// that flow (the newest by default). Prints why and returns null when none.
const onestop::Flow* pick_flow(const Catalog& c, const std::string& id, std::optional<int> version) {
  std::string flow_id;
  if (!id.empty()) {
    if (c.find_flow(id) != nullptr) {
      flow_id = id;
    } else if (const auto* t = c.find_theme(id)) {
      flow_id = t->flow;
    } else {
      std::cerr << fmt::format("onestop graph: no flow or theme '{}'\n", id);
      return nullptr;
    }
  } else if (c.themes.size() == 1) {
    flow_id = c.themes.front().flow;
  } else {
    std::set<std::string> ids;
    for (const auto& f : c.flows) ids.insert(f.id);
    if (ids.size() != 1) {
      std::cerr << "onestop graph: " << (ids.empty() ? "no flow found" : "several flows; choose one with --flow:");
      for (const auto& i : ids) std::cerr << ' ' << i;
      std::cerr << '\n';
      return nullptr;
    }
    flow_id = *ids.begin();
  }
  if (const auto* f = c.find_flow(flow_id, version)) return f;
  std::string versions;
  for (const auto& f : c.flows) {
    if (f.id == flow_id) versions += fmt::format("{}{}", versions.empty() ? "" : ", ", f.version);
  }
  if (versions.empty()) {
    std::cerr << fmt::format("onestop graph: no flow '{}'\n", flow_id);
  } else {
    std::cerr << fmt::format("onestop graph: flow '{}' has no version {} (it has {})\n", flow_id, *version, versions);
  }
  return nullptr;
}

// The SVG of a DOT text, through Graphviz's dot program; nullopt (after
// saying why) when dot cannot run or fails. The DOT goes through a temporary
// file and the SVG comes back through a pipe, so that this process writes
// the output and sees whether the write worked.
std::optional<std::string> dot_to_svg(const std::string& dot) {
  std::error_code ec;
  std::string name = (std::filesystem::temp_directory_path(ec) / "onestop-graph-XXXXXX").string();
  if (ec) name = "/tmp/onestop-graph-XXXXXX";
  const int fd = mkstemp(name.data());
  if (fd < 0) {
    std::cerr << fmt::format("onestop graph: cannot make a temporary file {}: {}\n", name, std::strerror(errno));
    return std::nullopt;
  }
  struct RemoveOnExit {
    const std::string& name;
    ~RemoveOnExit() { std::remove(name.c_str()); }
  } cleanup{name};
  bool written = true;
  for (std::size_t done = 0; done < dot.size() && written;) {
    const ssize_t n = ::write(fd, dot.data() + done, dot.size() - done);
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) done += static_cast<std::size_t>(n);
  }
  written = ::close(fd) == 0 && written;
  if (!written) {
    std::cerr << fmt::format("onestop graph: cannot write the temporary file {}: {}\n", name, std::strerror(errno));
    return std::nullopt;
  }
  FILE* pipe = popen(fmt::format("dot -Tsvg '{}'", name).c_str(), "r");
  if (pipe == nullptr) {
    std::cerr << "onestop graph: cannot run Graphviz 'dot' (apt-get install graphviz)\n";
    return std::nullopt;
  }
  std::string svg;
  char buffer[1 << 16];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) svg.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    std::cerr << "onestop graph: Graphviz 'dot' failed; is it installed? (apt-get install graphviz)\n";
    return std::nullopt;
  }
  return svg;
}

int graph(const std::vector<std::string>& paths, const std::string& flow_id, std::optional<int> version,
          const std::string& format, const std::string& output) {
  const auto result = onestop::load_catalog(to_paths(paths));
  print_diagnostics(result.diagnostics, false);
  const auto* flow = pick_flow(*result.catalog, flow_id, version);
  if (flow == nullptr) return 1;
  std::string text = onestop::render_dot(*flow, *result.catalog);
  if (format == "svg") {
    auto svg = dot_to_svg(text);
    if (!svg) return 1;
    text = std::move(*svg);
  }
  if (output.empty() || output == "-") {
    std::cout << text;
  } else {
    std::ofstream out(output, std::ios::binary);
    if (out) out << text;
    if (out) out.close();
    if (!out) {
      std::cerr << fmt::format("onestop graph: cannot write '{}': {}\n", output, std::strerror(errno));
      return 1;
    }
  }
  if (!result.ok()) {
    // As validate and summary: definitions with errors fail, though the flow is drawn as loaded.
    std::cerr << "onestop graph: the definitions have errors (drawn as loaded)\n";
    return 1;
  }
  return 0;
}

std::string limit_text(const onestop::TimeLimits& l) {
  std::string out;
  if (l.promised) out += "promised " + l.promised->to_string();
  if (l.statutory) out += (out.empty() ? "" : ", ") + std::string("statutory ") + l.statutory->to_string();
  return out.empty() ? "no limit" : out;
}

std::string department_name(const Catalog& c, const std::string& id) {
  const auto* d = c.find_department(id);
  return d ? d->name : id;
}

void print_item(const Catalog& c, const onestop::Item& it, const onestop::Node* via) {
  std::size_t from_library = 0;
  std::size_t conditional = 0;
  for (const auto& m : it.materials) {
    from_library += m.source != onestop::MaterialSource::applicant ? 1 : 0;
    conditional += m.necessity == onestop::Necessity::conditional ? 1 : 0;
  }
  std::cout << fmt::format("    {:<16} {}\n", it.code, it.name);
  std::cout << fmt::format("    {:<16} department: {}; {} [{} {}]\n", "", department_name(c, it.department),
                           limit_text(it.time_limit), onestop::gb_code(it.type), onestop::to_string(it.type));
  std::string step;
  if (via != nullptr && via->time_limit) {
    step = fmt::format("; step limit {}{}", via->time_limit->to_string(),
                       via->on_timeout == onestop::TimeoutAction::deem_consent ? ", silence counts as consent" : "");
  }
  std::cout << fmt::format("    {:<16} {} materials ({} fetched, {} conditional); max visits {}{}\n", "",
                           it.materials.size(), from_library, conditional, it.max_visits, step);
}

int summary(const std::vector<std::string>& paths) {
  const auto result = onestop::load_catalog(to_paths(paths));
  print_diagnostics(result.diagnostics, false);
  const Catalog& c = *result.catalog;
  std::set<std::string> in_theme;
  for (const auto& t : c.themes) {
    std::cout << fmt::format("Theme {} — {} (v{})\n", t.id, t.name, t.version);
    std::cout << fmt::format("  lead department: {}\n", department_name(c, t.lead_department));
    std::cout << fmt::format("  overall limit:   {}\n", limit_text(t.time_limit));
    const auto* flow = c.find_flow(t.flow);
    std::cout << fmt::format("  flow:            {} v{} ({} nodes, {} edges)\n", t.flow, flow ? flow->version : 0,
                             flow ? flow->nodes.size() : 0, flow ? flow->edges.size() : 0);
    const auto codes = c.theme_items(t);
    std::set<std::string> departments{t.lead_department};
    std::cout << fmt::format("  items ({}):\n", codes.size());
    for (const auto& code : codes) {
      in_theme.insert(code);
      const auto* it = c.find_item(code);
      if (it == nullptr) continue;
      departments.insert(it->department);
      const onestop::Node* via = nullptr;
      if (flow) {
        for (const auto& n : flow->nodes) {
          if (n.kind == onestop::NodeKind::subflow && n.item == code) via = &n;
        }
      }
      print_item(c, *it, via);
    }
    std::cout << fmt::format("  departments ({}):", departments.size());
    for (const auto& d : departments) std::cout << ' ' << d;
    std::cout << "\n\n";
  }
  bool header = false;
  for (const auto& it : c.items) {
    if (in_theme.count(it.code)) continue;
    if (!header) std::cout << "Items outside themes:\n";
    header = true;
    print_item(c, it, nullptr);
  }
  return result.ok() ? 0 : 1;
}

// Flushes standard output. Output that could not be written (a full disk,
// a closed pipe) fails the run: exit 2 unless the command failed already.
int finish_output(int code) {
  std::cout.flush();
  const bool stream_failed = !std::cout;
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int error = errno;
  if (stream_failed || flush_failed || std::ferror(stdout) != 0) {
    std::cerr << "onestop: cannot write standard output"
              << (flush_failed && error != 0 ? fmt::format(": {}", std::strerror(error)) : std::string()) << '\n';
    return code == 0 ? 2 : code;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"onestop — government-service approval engine"};
  app.set_version_flag("--version", std::string(onestop::version));
  app.require_subcommand(1);

  std::vector<std::string> paths;
  std::string format = "text";
  auto* validate_cmd = app.add_subcommand("validate", "Load definitions and report every problem");
  validate_cmd->add_option("paths", paths, "YAML files or directories")->required();
  validate_cmd->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));

  std::string flow_id;
  int flow_version = 0;
  std::string graph_format = "dot";
  std::string output;
  auto* graph_cmd = app.add_subcommand("graph", "Render a flow as Graphviz DOT (or SVG through dot)");
  graph_cmd->add_option("paths", paths, "YAML files or directories")->required();
  graph_cmd->add_option("--flow", flow_id, "flow or theme id (needed when several flows are loaded)");
  auto* flow_version_opt = graph_cmd->add_option("--flow-version", flow_version, "flow version (the newest by default)");
  graph_cmd->add_option("--format", graph_format, "dot or svg")->check(CLI::IsMember({"dot", "svg"}));
  graph_cmd->add_option("-o,--output", output, "output file (standard output by default)");

  auto* summary_cmd = app.add_subcommand("summary", "Summarise themes and items: departments and limits");
  summary_cmd->add_option("paths", paths, "YAML files or directories")->required();

  add_calendar_commands(app);
  add_simulate_command(app);
  add_store_commands(app);
  add_test_command(app);

  app.footer(
      "Exit status: 0 success; 1 the command's own failure (definitions with errors, an unknown flow, store, "
      "target or case, a bad time, a failed test or check); 2 a failure while running (output that cannot be "
      "written; test: a malformed script or no test to run; simulate: the run failed); 100 and above: the "
      "command line itself is wrong.");

  int code = 0;
  try {
    app.parse(argc, argv);
    if (*validate_cmd) code = validate(paths, format);
    if (*graph_cmd) {
      const auto version = flow_version_opt->count() > 0 ? std::optional<int>(flow_version) : std::nullopt;
      code = graph(paths, flow_id, version, graph_format, output);
    }
    if (*summary_cmd) code = summary(paths);
  } catch (const CLI::ParseError& e) {
    code = app.exit(e);
  } catch (const onestop::Error& e) {
    std::cerr << "onestop: " << onestop::to_string(e.code()) << ": " << e.what() << '\n';
    code = 2;
  } catch (const std::exception& e) {
    std::cerr << "onestop: " << e.what() << '\n';
    code = 2;
  }
  return finish_output(code);
}
