#pragma once

// The compact investment-project theme the runtime and SQLite benchmarks
// drive: one-window acceptance, five co-departments in parallel, join, a
// countersigned decision; eight inputs per case. Its definitions are
// tests/data/store/investment.yaml, the file the store tests run on.

#include <onestop/onestop.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace onestop::bench {

inline const std::string company = "91110000600037341L";

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline std::shared_ptr<const Catalog> compact_catalog() {
  static const auto catalog = [] {
    auto loaded = load_catalog({std::filesystem::path(ONESTOP_SOURCE_DIR) / "tests" / "data" / "store" / "investment.yaml"});
    if (!loaded.ok()) {
      for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
      std::exit(1);
    }
    return loaded.catalog;
  }();
  return catalog;
}

// An engine on the compact theme over `store`, with the actors of each step.
struct CompactDriver {
  static constexpr int actions_per_case = 8;  // the submission and seven actions

  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(std::chrono::sys_days{std::chrono::year{2026} / 3 / 2});
  std::unique_ptr<Engine> engine;
  Submission submission;
  Actor applicant = Actor::applicant_of(company);
  Actor hall = Actor::staff_member("clerk", {}, {"hall"});
  Actor departments[5] = {Actor::staff_member("p", {}, {"planning"}), Actor::staff_member("l", {}, {"land"}),
                          Actor::staff_member("e", {}, {"environment"}), Actor::staff_member("f", {}, {"fire"}),
                          Actor::staff_member("g", {}, {"energy"})};
  Actor lead = Actor::staff_member("lead", {"lead"});

  explicit CompactDriver(std::shared_ptr<Store> store) {
    EngineOptions o;
    o.store = std::move(store);
    o.clock = clock;
    engine = open_engine(compact_catalog(), o);
    submission.target = "XK-INV-0001";
    submission.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
  }

  // Submits and accepts: the case waits on its five parallel tasks. 2 inputs.
  CaseId open_case() {
    const CaseId id = *engine->submit(submission, applicant).case_id;
    Action a;
    a.case_id = id;
    a.kind = ActionKind::accept;
    a.task = 1;
    a.actor = hall;
    engine->act(a);
    return id;
  }

  // The rest: five reviews and the decision. 6 actions.
  void close_case(CaseId id) {
    Action a;
    a.case_id = id;
    a.kind = ActionKind::approve;
    for (TaskId t = 2; t <= 6; ++t) {
      a.task = t;
      a.actor = departments[t - 2];
      engine->act(a);
    }
    a.task = 7;
    a.actor = lead;
    engine->act(a);
  }
};

}  // namespace onestop::bench
