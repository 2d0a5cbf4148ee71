// Cases per second through the in-memory engine on one core: the
// investment-project shape (one-window acceptance, five co-departments in
// parallel, join, joint decision), and the full example theme with its
// item subflows. Also actions per second, microseconds per action, and the
// memory an open case costs while it waits on its parallel tasks. The
// compact theme runs twice: cold (a fresh heap, every page new to the
// process: the figure, as a host whose memory store keeps every case grows)
// and warm (on the heap the first run freed: the engine without the
// kernel's page faults, shown beside it).

#include <onestop/onestop.hpp>

#include "compact_investment.hpp"

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string_view>

using namespace onestop;
namespace fs = std::filesystem;

namespace {

using bench::company;
using bench::CompactDriver;
using bench::seconds_since;

struct Everything final : CertificateProvider {
  std::optional<OfferedMaterial> fetch(const Applicant&, const Material& m) override {
    return OfferedMaterial{m.id, m.id + ".ofd", 1, MaterialForm::electronic};
  }
};

// The compact investment theme: returns {cases/s, actions/s}.
std::pair<double, double> compact(int cases) {
  CompactDriver d(open_memory_store());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < cases; ++i) d.close_case(d.open_case());
  const double elapsed = seconds_since(t0);
  if (d.engine->get(static_cast<CaseId>(cases)).outcome != Outcome::approved) {
    std::fprintf(stderr, "the last case did not end approved\n");
    std::exit(1);
  }
  return {cases / elapsed, static_cast<double>(cases) * CompactDriver::actions_per_case / elapsed};
}

// Anonymous memory of the process in bytes (/proc/self/smaps_rollup).
double anonymous_bytes() {
  std::FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  if (f == nullptr) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "Anonymous: %lf kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

// Memory held per case accepted and waiting on its five parallel tasks
// (state, open-task index and history in the memory store): the heap in use
// (malloc's count) plus the pages mapped outside malloc (the memory store's
// history log), taken as the growth of anonymous memory that malloc's
// arena and mappings do not account for.
double bytes_per_open_case(int cases) {
  CompactDriver d(open_memory_store());
  d.open_case();  // first: what is made once (per-thread memos, the first log block) is no case's
  malloc_trim(0);
  const struct mallinfo2 m0 = mallinfo2();
  const double anon0 = anonymous_bytes();
  for (int i = 0; i < cases; ++i) d.open_case();
  const struct mallinfo2 m1 = mallinfo2();
  const double heap = static_cast<double>(m1.uordblks + m1.hblkhd) - static_cast<double>(m0.uordblks + m0.hblkhd);
  const double outside = (anonymous_bytes() - anon0) - (static_cast<double>(m1.arena + m1.hblkhd) -
                                                         static_cast<double>(m0.arena + m0.hblkhd));
  return (heap + std::max(0.0, outside)) / cases;
}

// The example theme from examples/investment-project, item subflows and all.
double example_theme(int cases) {
  auto loaded = load_catalog({fs::path(ONESTOP_SOURCE_DIR) / "examples" / "investment-project"});
  if (!loaded.ok()) std::exit(1);
  EngineOptions o;
  o.clock = std::make_shared<ManualClock>(std::chrono::sys_days{std::chrono::year{2026} / 3 / 2});
  o.certificates = std::make_shared<Everything>();
  auto engine = open_engine(loaded.catalog, o);
  const Catalog& cat = *loaded.catalog;
  Submission s;
  s.target = cat.themes.front().id;
  s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
  for (const auto& code : cat.theme_items(cat.themes.front())) {
    for (const auto& m : cat.find_item(code)->materials) {
      const bool offered = std::any_of(s.materials.begin(), s.materials.end(), [&](const OfferedMaterial& o) { return o.id == m.id; });
      if (m.source == MaterialSource::applicant && !offered) {  // a material several items list, once
        s.materials.push_back({m.id, m.id + "." + (m.file_types.empty() ? "pdf" : m.file_types.front()), 1, m.form});
      }
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  int finished = 0;
  for (int i = 0; i < cases; ++i) {
    const CaseId id = *engine->submit(s, Actor::applicant_of(company)).case_id;
    for (int guard = 0; guard < 200; ++guard) {
      const Case c = engine->get(id);
      if (c.status != CaseStatus::running) break;
      const auto open = c.open_tasks();
      if (open.empty()) {  // waiting on a timer (the EIA publicity period)
        auto clock = std::static_pointer_cast<ManualClock>(o.clock);
        clock->advance(std::chrono::hours(24 * 7));
        engine->tick(clock->now());
        continue;
      }
      const Task& t = *open.front();
      Action a;
      a.case_id = id;
      a.task = t.id;
      a.kind = ActionKind::approve;
      a.actor = Actor::staff_member("staff" + std::to_string(t.signatures.size()), t.candidates.roles, t.candidates.departments);
      if (!t.candidates.users.empty()) a.actor.user = t.candidates.users.front();
      engine->act(a);
    }
    finished += engine->get(id).status == CaseStatus::finished ? 1 : 0;
  }
  const double elapsed = seconds_since(t0);
  if (finished != cases) std::fprintf(stderr, "example theme: only %d of %d cases finished\n", finished, cases);
  return cases / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {  // profiling: only the compact theme, N cases, cold then (unless "cold") warm
    const auto [c, a] = compact(std::atoi(argv[1]));
    std::printf("figure: investment_cases_per_s %.0f cases/s\nfigure: actions_per_s %.0f actions/s\n", c, a);
    if (argc > 2 && std::string_view(argv[2]) == "cold") return 0;
    std::printf("figure: investment_cases_per_s_warm %.0f cases/s\n", compact(std::atoi(argv[1])).first);
    return 0;
  }
  // First, while the heap is fresh: pages malloc freed and gave back would
  // be counted again when touched.
  const double per_open_case = bytes_per_open_case(20000);
  // The figure, cold: every byte the 50,000 retained cases take is new to
  // the process (malloc_trim gives back what the run above freed), so the
  // run pays the kernel for each page it touches first, as a host whose
  // memory store keeps every case does. Warm, beside it: the same run
  // again on the heap the cold run left (its engine and store are gone,
  // their memory freed but kept): the engine's own speed.
  malloc_trim(0);
  const auto [cases_per_s, actions_per_s] = compact(50000);
  const double warm = compact(50000).first;
  std::printf("figure: investment_cases_per_s %.0f cases/s\n", cases_per_s);
  std::printf("figure: actions_per_s %.0f actions/s\n", actions_per_s);
  std::printf("figure: us_per_action %.2f us\n", 1e6 / actions_per_s);
  std::printf("figure: investment_cases_per_s_warm %.0f cases/s\n", warm);
  std::printf("figure: bytes_per_open_case %.0f bytes\n", per_open_case);
  std::printf("figure: example_theme_cases_per_s %.0f cases/s\n", example_theme(2000));
  return 0;
}
