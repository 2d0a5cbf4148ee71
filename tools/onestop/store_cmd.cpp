// onestop export   --store URI [--case ID]... [-o FILE]        cases to a portable archive
// onestop import   --store URI [-i FILE] PATH...                 cases from an archive (PATH: definitions)
// onestop versions --store URI                                   which cases run on which definition version
// onestop stats    --store URI PATH... [--target ..] [--format]  supervision figures (电子监察)

#include "store_cmd.hpp"

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>
#include <onestop/supervision.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string_view>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace onestop;

struct Options {
  std::string store;
  std::vector<std::string> paths;
  std::vector<std::string> cases;  // as given; case_ids() checks them
  std::string file;
  std::string target;
  std::string department;
  std::string from;
  std::string to;
  std::string now;
  std::string format = "text";
};

[[noreturn]] void fail(const std::string& command, const std::string& message) {
  std::cerr << "onestop " << command << ": " << message << '\n';
  throw CLI::RuntimeError(1);
}

std::shared_ptr<const Catalog> load_definitions(const std::string& command, const std::vector<std::string>& paths) {
  const auto r = load_catalog(std::vector<std::filesystem::path>(paths.begin(), paths.end()));
  for (const auto& d : r.diagnostics) {
    if (d.severity == Severity::error) std::cerr << d.to_string() << '\n';
  }
  if (!r.ok()) fail(command, "the definitions have errors");
  return r.catalog;
}

// The instant an option gives: "2026-03-02" is the start of that day in
// China (UTC+8), else a full "2026-03-02T09:00:00+08:00" (parse_instant);
// ends the command, quoting the text, when it is neither.
Instant parse_time(const std::string& command, const char* option, const std::string& text) {
  const auto t = parse_instant(text.size() == 10 ? text + "T00:00:00+08:00" : text);
  if (!t) {
    fail(command,
         fmt::format("{} '{}' is not a date (2026-03-02) or a time (2026-03-02T09:00:00+08:00)", option, text));
  }
  return *t;
}

// The --case ids: whole numbers from 1, as the store hands them out.
std::vector<CaseId> case_ids(const std::string& command, const std::vector<std::string>& texts) {
  std::vector<CaseId> out;
  for (const auto& text : texts) {
    CaseId id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    const bool whole = !text.empty() && text[0] >= '0' && text[0] <= '9' && ec == std::errc() &&
                       end == text.data() + text.size();
    if (!whole || id == 0) {
      fail(command, fmt::format("--case '{}' is not a case id (a whole number from 1 to {})", text,
                                std::numeric_limits<CaseId>::max()));
    }
    out.push_back(id);
  }
  return out;
}

// The file of a sqlite: URI, as open_store reads it; nullopt for memory:,
// sqlite::memory: and other schemes (open_store judges those).
std::optional<std::string> sqlite_file(std::string_view uri) {
  if (uri.substr(0, 7) != "sqlite:") return std::nullopt;
  std::string_view rest = uri.substr(7);
  if (rest.substr(0, 2) == "//") rest.remove_prefix(2);
  rest = rest.substr(0, rest.find('?'));
  if (rest.empty() || rest == ":memory:") return std::nullopt;
  return std::string(rest);
}

// The store of a command that only reads it. A SQLite file must exist (a
// mistyped path must not leave an empty database behind) and is opened
// read-only, so that a store one may not write can be read and reading
// changes nothing. Only a store of an older schema, which a writer upgrades,
// is opened for writing when its read-only opening fails and one may write
// it: an empty file or any other non-database is refused as it is (a writer
// would make an empty store of it), and a locked store fails after one busy
// timeout, not after a writer waited once more.
std::shared_ptr<Store> open_for_reading(const std::string& command, const std::string& uri) {
  const auto file = sqlite_file(uri);
  if (!file) return open_store(uri);
  std::error_code ec;
  if (std::filesystem::status(*file, ec).type() == std::filesystem::file_type::not_found) {
    fail(command, fmt::format("no such store: {}", *file));
  }
  const char last = uri.back();
  const char* separator = uri.find('?') == std::string::npos ? "?" : last == '?' || last == '&' ? "" : "&";
  const std::string read_only = uri + separator + "read_only=1";
  try {
    return open_store(read_only);
  } catch (const Error& e) {
    // The store's own refusal of an older schema (SQLite read it, WAL and
    // all: the file's header alone may not have the schema yet).
    const bool older = std::string_view(e.what()).find("is older than this build's") != std::string_view::npos;
    if (e.code() != ErrorCode::storage || ::access(file->c_str(), W_OK) != 0 || !older) throw;
    return open_store(uri);
  }
}

// Refuses an -o that names the database file of the store being exported,
// or one of the files SQLite keeps beside it: the archive would replace the
// cases it is read from. Files that exist are compared as files (a hard
// link, a symbolic link or another spelling is the same file); a companion
// not there yet is compared by its path, symbolic links resolved.
void refuse_store_files(const std::string& uri, const std::string& output) {
  const auto file = sqlite_file(uri);
  if (!file) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path out_path = fs::weakly_canonical(output, ec);
  const fs::path db = fs::weakly_canonical(*file, ec);
  for (const std::string suffix : {"", "-wal", "-shm", "-journal"}) {
    const fs::path candidate = db.string() + suffix;
    std::error_code e1, e2;
    const bool same = fs::exists(output, e1) && fs::exists(candidate, e2) ? fs::equivalent(output, candidate, e1)
                                                                          : !out_path.empty() && out_path == candidate;
    if (!same) continue;
    const std::string what = suffix.empty() ? fmt::format("the database file of the store {}", *file)
                                            : fmt::format("{}, a file SQLite keeps beside the store {}",
                                                          candidate.string(), *file);
    fail("export", fmt::format("-o '{}' is {}: the archive would overwrite the store it is read from; "
                               "write it to another file",
                               output, what));
  }
}

// The -o file of export, written so that a failed export leaves whatever
// was there before untouched: the archive goes to a temporary file beside
// the target, synced, which replaces the target (rename) only once it is
// complete. Written directly instead: a target that is not a regular file
// (/dev/stdout, a pipe, a device) or that lies under /dev or /proc
// (renaming over it would replace it), and one in a directory that cannot
// take a temporary file though the target itself may be written. A
// target that cannot be renamed over (a bind mount, another file system)
// gets the finished archive copied in. A symbolic link, dangling or not,
// keeps pointing at the file it names.
class OutputFile {
 public:
  explicit OutputFile(const std::string& name) : name_(name) {
    namespace fs = std::filesystem;
    std::error_code ec;
    target_ = name;
    for (int hops = 0; hops < 40 && fs::is_symlink(fs::symlink_status(target_, ec)); ++hops) {
      const fs::path next = fs::read_symlink(target_, ec);
      if (ec) break;
      target_ = next.is_absolute() ? next : target_.parent_path() / next;
    }
    const auto status = fs::status(target_, ec);
    const std::string shown = target_.lexically_normal().string();
    const bool special = shown.rfind("/dev/", 0) == 0 || shown.rfind("/proc/", 0) == 0;
    if (fs::exists(status) && ::access(target_.c_str(), W_OK) != 0) {
      fail("export", fmt::format("cannot write '{}': {}", name, std::strerror(errno)));
    }
    const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
    if (special || (fs::exists(status) && !fs::is_regular_file(status)) ||
        (fs::exists(status) && ::access(dir.c_str(), W_OK) != 0)) {
      out_.open(target_, std::ios::binary);
      if (!out_) fail("export", fmt::format("cannot write '{}': {}", name, std::strerror(errno)));
      return;
    }
    std::string temp = (dir / ("." + target_.filename().string() + ".XXXXXX")).string();
    const int fd = ::mkstemp(temp.data());
    if (fd < 0) {
      fail("export", fmt::format("cannot write '{}': cannot make a temporary file in {}: {}", name, dir.string(),
                                 std::strerror(errno)));
    }
    temp_ = temp;
    // The permissions a new file gets (mkstemp makes it 0600), or those of
    // the file it replaces.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    mode_t mode = 0666 & ~mask;
    if (fs::is_regular_file(status)) mode = static_cast<mode_t>(status.permissions()) & 07777;
    ::fchmod(fd, mode | S_IWUSR);  // written now; the mode it keeps is set when complete
    mode_ = mode;
    ::close(fd);
    out_.open(temp_, std::ios::binary | std::ios::trunc);
    if (!out_) {
      const int error = errno;
      std::remove(temp_.c_str());
      temp_.clear();
      fail("export", fmt::format("cannot write '{}': {}", name, std::strerror(error)));
    }
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    if (!temp_.empty()) std::remove(temp_.c_str());
  }

  std::ostream& stream() { return out_; }

  // Closes the file and puts it in place; ends the command when that fails.
  void finish() {
    out_.close();
    if (!out_) fail("export", fmt::format("cannot write '{}': {}", name_, std::strerror(errno ? errno : EIO)));
    if (temp_.empty()) return;
    // On disk before it replaces the target: after a crash the old file or
    // the whole new one, never a part.
    if (const int fd = ::open(temp_.c_str(), O_RDONLY); fd >= 0) {
      const bool synced = ::fsync(fd) == 0;
      const int error = errno;
      ::close(fd);
      if (!synced) fail("export", fmt::format("cannot write '{}': {}", name_, std::strerror(error)));
    }
    ::chmod(temp_.c_str(), mode_);
    if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
      const int error = errno;
      if (error != EBUSY && error != EXDEV) {
        fail("export", fmt::format("cannot write '{}': {}", name_, std::strerror(error)));
      }
      // A bind-mounted target or one on another file system: the complete
      // archive is copied into it.
      std::error_code ec;
      std::filesystem::copy_file(temp_, target_, std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) fail("export", fmt::format("cannot write '{}': {}", name_, ec.message()));
      return;  // the destructor removes the temporary file
    }
    temp_.clear();
    // The rename itself on disk.
    const std::filesystem::path dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    if (const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }

 private:
  std::string name_;
  std::filesystem::path target_;
  std::string temp_;  // while it is to be removed
  mode_t mode_ = 0644;
  std::ofstream out_;
};

void export_command(const Options& o) {
  const auto ids = case_ids("export", o.cases);
  auto store = open_for_reading("export", o.store);
  if (o.file.empty() || o.file == "-") {
    try {
      export_cases(*store, std::cout, ids);
    } catch (const Error&) {
      // Standard output that cannot be written fails the command as it
      // fails every other (main: exit 2); anything else is export's own.
      if (!std::cout) return;
      throw;
    }
    return;
  }
  refuse_store_files(o.store, o.file);
  OutputFile file(o.file);
  std::size_t n = 0;
  try {
    n = export_cases(*store, file.stream(), ids);
  } catch (const Error&) {
    // A file that cannot be written (a full disk, a size limit): say which, and why.
    if (!file.stream()) fail("export", fmt::format("cannot write '{}': {}", o.file, std::strerror(errno ? errno : EIO)));
    throw;
  }
  file.finish();
  std::cerr << fmt::format("{} case{} written to {}\n", n, n == 1 ? "" : "s", o.file);
}

void import_command(const Options& o) {
  auto catalog = load_definitions("import", o.paths);
  EngineOptions eo;
  eo.store = open_store(o.store);
  auto engine = open_engine(catalog, eo);
  std::ifstream file;
  const bool standard_input = o.file.empty() || o.file == "-";
  if (!standard_input) {
    file.open(o.file, std::ios::binary);
    if (!file) fail("import", fmt::format("cannot read '{}'", o.file));
  }
  std::istream& in = standard_input ? std::cin : file;
  ImportReport report;
  if (auto* sqlite = dynamic_cast<SqliteStore*>(eo.store.get())) {
    // One transaction for the whole archive: all of it is there, or the
    // failed cases are reported and the rest are.
    SqliteBatch batch(*sqlite);
    report = import_cases(*engine, in);
    batch.commit();
  } else {
    report = import_cases(*engine, in);
  }
  for (const auto& p : report.problems) std::cerr << p << '\n';
  std::cout << fmt::format("{} imported, {} refused\n", report.imported, report.refused);
  if (!report.ok()) throw CLI::RuntimeError(1);
}

void versions_command(const Options& o) {
  auto store = open_for_reading("versions", o.store);
  auto* sqlite = dynamic_cast<SqliteStore*>(store.get());
  if (sqlite == nullptr) fail("versions", fmt::format("'{}' keeps no definition versions (use a sqlite: store)", o.store));
  const auto uses = sqlite->versions();
  if (o.format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& u : uses) {
      out.push_back({{"kind", u.kind}, {"id", u.id}, {"version", u.version}, {"name", u.name},
                     {"running", u.running}, {"finished", u.finished}});
    }
    std::cout << out.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("{:<6} {:<40} {:>7} {:>9} {:>9}  {}\n", "kind", "id", "version", "running", "finished", "name");
  for (const auto& u : uses) {
    std::cout << fmt::format("{:<6} {:<40} {:>7} {:>9} {:>9}  {}\n", u.kind, u.id, u.version, u.running, u.finished, u.name);
  }
}

nlohmann::json figures_json(const StatsFigures& f) {
  return {{"cases", f.cases},
          {"finished", f.finished},
          {"open", f.open},
          {"finished_on_time", f.finished_on_time},
          {"finished_overdue", f.finished_overdue},
          {"open_overdue", f.open_overdue},
          // No finished case with a promised limit (none finished, or none had one): no rate, as simulate says.
          {"on_time_rate", f.finished_on_time + f.finished_overdue > 0 ? nlohmann::json(f.on_time_rate) : nlohmann::json(nullptr)},
          {"mean_days", f.mean_days},
          {"p50_days", f.p50_days},
          {"p90_days", f.p90_days},
          {"p99_days", f.p99_days},
          {"max_days", f.max_days},
          {"yellow_warnings", f.yellow_warnings},
          {"red_warnings", f.red_warnings},
          {"evaluations", f.evaluations},
          {"mean_rating", f.mean_rating},
          {"satisfaction_rate", f.satisfaction_rate},
          {"poor_ratings", f.poor_ratings},
          {"follow_ups_open", f.follow_ups_open},
          {"follow_ups_overdue", f.follow_ups_overdue}};
}

void stats_command(const Options& o) {
  auto catalog = load_definitions("stats", o.paths);
  if (!o.target.empty() && catalog->find_item(o.target) == nullptr && catalog->find_theme(o.target) == nullptr) {
    fail("stats", fmt::format("--target '{}' is not an item code or theme id in the definitions", o.target));
  }
  if (!o.department.empty() && catalog->find_department(o.department) == nullptr) {
    const auto& items = catalog->items;
    const auto& themes = catalog->themes;
    const bool used =
        std::any_of(items.begin(), items.end(), [&](const Item& i) { return i.department == o.department; }) ||
        std::any_of(themes.begin(), themes.end(), [&](const Theme& t) { return t.lead_department == o.department; });
    if (!used) fail("stats", fmt::format("--department '{}' is not a department in the definitions", o.department));
  }
  StatsQuery q;
  if (!o.from.empty()) q.from = parse_time("stats", "--from", o.from);
  if (!o.to.empty()) q.to = parse_time("stats", "--to", o.to);
  q.target = o.target;
  q.department = o.department;
  EngineOptions eo;
  if (!o.now.empty()) eo.clock = std::make_shared<ManualClock>(parse_time("stats", "--now", o.now));
  eo.store = open_for_reading("stats", o.store);
  auto engine = open_engine(catalog, eo);
  const SupervisionStats s = engine->statistics(q);
  if (o.format == "json") {
    nlohmann::json out{{"total", figures_json(s.total)}};
    for (const auto& [name, group] : {std::pair{"by_target", &s.by_target}, {"by_department", &s.by_department},
                                      {"by_month", &s.by_month}}) {
      nlohmann::json g = nlohmann::json::object();
      for (const auto& [key, f] : *group) g[key] = figures_json(f);
      out[name] = g;
    }
    std::cout << out.dump(2) << '\n';
    return;
  }
  auto row = [](const std::string& name, const StatsFigures& f) {
    std::cout << fmt::format("{:<36} {:>7} {:>7} {:>6} {:>8} {:>7} {:>6.1f} {:>6.1f} {:>6.1f} {:>5} {:>4} {:>5} {:>6}\n",
                             name, f.cases, f.finished, f.open, f.finished_on_time + f.finished_overdue > 0 ? percent_text(f.on_time_rate) : "-",
                             f.open_overdue, f.mean_days,
                             f.p50_days, f.p90_days, f.yellow_warnings, f.red_warnings, f.evaluations,
                             f.evaluations ? fmt::format("{:.2f}", f.mean_rating) : std::string("-"));
  };
  auto table = [&](const std::string& title, const std::map<std::string, StatsFigures>& groups) {
    std::cout << fmt::format("\n{:<36} {:>7} {:>7} {:>6} {:>8} {:>7} {:>6} {:>6} {:>6} {:>5} {:>4} {:>5} {:>6}\n", title,
                             "cases", "done", "open", "on-time", "overdue", "mean", "p50", "p90", "yel", "red", "evals",
                             "rating");
    for (const auto& [key, f] : groups) row(key.empty() ? "(none)" : key, f);
  };
  table("total", {{"all cases", s.total}});
  table("by item or theme", s.by_target);
  table("by department", s.by_department);
  table("by month (submitted)", s.by_month);
  std::cout << "\nDays are working days from submission to the end, suspensions excluded; ratings 1 (very satisfied) .. 5.\n";
}

// Runs a command; library errors end it with their code and message.
template <class F>
auto guarded(const char* command, std::shared_ptr<Options> o, F f) {
  return [command, o, f] {
    try {
      f(*o);
    } catch (const Error& e) {
      fail(command, fmt::format("{}: {}", to_string(e.code()), e.what()));
    }
  };
}

}  // namespace

void add_store_commands(CLI::App& app) {
  auto o = std::make_shared<Options>();
  const std::string store_help = "the store: sqlite:PATH or memory:";

  auto* ex = app.add_subcommand("export", "Write cases with their hash-chained history to a portable archive");
  ex->add_option("--store", o->store, store_help)->required();
  ex->add_option("--case", o->cases, "only these case ids, whole numbers from 1 (all by default)");
  ex->add_option("-o,--output", o->file, "the archive file (standard output by default, or '-')");
  ex->callback(guarded("export", o, export_command));

  auto* im = app.add_subcommand("import", "Read cases from an archive; each is checked and replayed");
  im->add_option("--store", o->store, store_help)->required();
  im->add_option("-i,--input", o->file, "the archive file (standard input by default, or '-')");
  im->add_option("paths", o->paths, "definitions (YAML files or directories) holding the versions the cases ran on")->required();
  im->callback(guarded("import", o, import_command));

  auto* ve = app.add_subcommand("versions", "Which cases run on which definition version");
  ve->add_option("--store", o->store, store_help)->required();
  ve->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  ve->callback(guarded("versions", o, versions_command));

  auto* st = app.add_subcommand("stats", "Supervision figures: on-time rates, handling days, warnings, evaluations");
  st->add_option("--store", o->store, store_help)->required();
  st->add_option("paths", o->paths, "definitions (YAML files or directories)")->required();
  st->add_option("--target", o->target, "only this item code or theme id");
  st->add_option("--department", o->department, "only this implementing department");
  st->add_option("--from", o->from, "submitted on or after (2026-03-02 or 2026-03-02T09:00:00+08:00)");
  st->add_option("--to", o->to, "submitted before");
  st->add_option("--now", o->now, "count overdue cases as at this time (now by default)");
  st->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  st->callback(guarded("stats", o, stats_command));
}
