// Random walks through the three example themes: random legal and illegal
// actions, timers and handler failures, with the invariants checked after
// every step and every case replayed from its history.

#include <onestop/onestop.hpp>

#include "codec_store.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <random>
#include <set>

namespace fs = std::filesystem;
using namespace onestop;

namespace {

const std::string person = "34052419800101001X";
const std::string company = "91110000600037341L";

// Everything the libraries could hold, they hold.
struct GenerousLibrary final : CertificateProvider {
  std::optional<OfferedMaterial> fetch(const Applicant&, const Material& m) override {
    return OfferedMaterial{m.id, m.id + ".ofd", 1, MaterialForm::electronic};
  }
};

// Succeeds, rejects or fails at random.
struct Coin final : StepHandler {
  std::mt19937* rng;
  explicit Coin(std::mt19937* r) : rng(r) {}
  StepResult run(const Case&, const Task&) override {
    const int roll = static_cast<int>((*rng)() % 10);
    StepResult r;
    r.ok = roll != 0;
    r.decision = roll == 1 ? Decision::rejected : Decision::approved;
    r.message = r.ok ? "checked" : "service unavailable";
    return r;
  }
};

Value random_value(std::mt19937& rng) {
  static const char* words[] = {"owned", "rented", "other", "employment", "study", "chemical", "steel", "retail"};
  switch (rng() % 4) {
    case 0: return Value(static_cast<double>(rng() % 100'000'000));
    case 1: return Value(static_cast<double>(rng() % 24));
    case 2: return Value(rng() % 2 == 0);
    default: return Value(words[rng() % 8]);
  }
}

struct Walker {
  std::shared_ptr<const Catalog> catalog;
  std::mt19937 rng;
  std::shared_ptr<ManualClock> clock;
  std::unique_ptr<Engine> engine;
  std::vector<std::string> form_fields;
  std::size_t accepted = 0;
  std::size_t refused = 0;
  std::set<Outcome> outcomes;

  Walker(const fs::path& dir, unsigned seed, std::shared_ptr<Store> store = nullptr)
      : rng(seed), clock(std::make_shared<ManualClock>(std::chrono::sys_days{std::chrono::year{2025} / 9 / 1})) {
    auto r = load_catalog({dir, fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
    REQUIRE(r.ok());
    catalog = r.catalog;
    EngineOptions o;
    o.clock = clock;
    o.certificates = std::make_shared<GenerousLibrary>();
    o.run_handlers_inline = false;
    o.store = std::move(store);
    engine = open_engine(catalog, o);
    std::set<std::string> fields;
    auto collect = [&](const Expr& e) {
      if (!e.valid()) return;
      for (const auto& f : e.fields()) {
        if (f.rfind("form.", 0) == 0) fields.insert(f.substr(5));
      }
    };
    for (const auto& it : catalog->items) {
      for (const auto& m : it.materials) collect(m.required_if);
      for (const auto& node : it.materials) (void)node;
    }
    for (const auto& f : catalog->flows) {
      for (const auto& e : f.edges) collect(e.guard);
      for (const auto& n : f.nodes) {
        if (n.kind == NodeKind::automatic) engine->register_handler(n.handler, std::make_shared<Coin>(&rng));
      }
    }
    form_fields.assign(fields.begin(), fields.end());
  }

  std::string target() const {
    if (!catalog->themes.empty()) return catalog->themes.front().id;
    return catalog->items.front().code;
  }

  std::optional<CaseId> submit() {
    Submission s;
    s.target = target();
    std::vector<const Item*> items;
    if (const Theme* t = catalog->find_theme(s.target)) {
      for (const auto& code : catalog->theme_items(*t)) items.push_back(catalog->find_item(code));
    } else {
      items.push_back(catalog->find_item(s.target));
    }
    const bool legal = std::all_of(items.begin(), items.end(), [](const Item* it) {
      return std::find(it->applicants.begin(), it->applicants.end(), ApplicantKind::legal_person) != it->applicants.end();
    });
    s.applicant = legal ? Applicant{ApplicantKind::legal_person, company, "Company"}
                        : Applicant{ApplicantKind::natural_person, person, "Person"};
    for (const auto& f : form_fields) {
      if (rng() % 5 != 0) s.form[f] = random_value(rng);
    }
    for (const Item* it : items) {
      for (const auto& m : it->materials) {
        if (m.source != MaterialSource::applicant) continue;
        if (std::any_of(s.materials.begin(), s.materials.end(), [&](const OfferedMaterial& o) { return o.id == m.id; })) {
          continue;  // a material several items list, offered once
        }
        const std::string ext = m.file_types.empty() ? "pdf" : m.file_types.front();
        s.materials.push_back({m.id, m.id + "." + ext, 1, m.form});
      }
    }
    s.keep_draft_if_deficient = true;
    try {
      return engine->submit(s, Actor::applicant_of(s.applicant.id)).case_id;
    } catch (const Error&) {
      return std::nullopt;  // e.g. a guard or condition failed on odd form data
    }
  }

  Actor random_actor(const Case& c, const Task* t) {
    const int roll = static_cast<int>(rng() % 20);
    if (roll == 0) return Actor::supervisor_named("sup");
    if (roll == 1) return Actor::applicant_of(c.applicant.id);
    if (roll == 2 || t == nullptr) return Actor::staff_member("stranger", {"nobody"}, {"nowhere"});
    Actor a = Actor::staff_member("u" + std::to_string(rng() % 4));
    if (!t->assigned_user.empty() && rng() % 4 != 0) a.user = t->assigned_user;
    const auto& cand = t->candidates;
    if (!cand.users.empty() && rng() % 3 == 0) a.user = cand.users[rng() % cand.users.size()];
    if (!cand.roles.empty()) a.roles.push_back(cand.roles[rng() % cand.roles.size()]);
    if (!cand.departments.empty()) a.departments.push_back(cand.departments[rng() % cand.departments.size()]);
    return a;
  }

  void step(CaseId id) {
    const Case before = engine->get(id);
    const auto history_before = engine->history(id).size();
    const auto open = before.open_tasks();
    const Task* task = open.empty() ? nullptr : open[rng() % open.size()];
    Action a;
    a.case_id = id;
    a.kind = static_cast<ActionKind>(rng() % (static_cast<unsigned>(ActionKind::retry) + 1));
    if (rng() % 3 != 0) a.kind = rng() % 2 ? ActionKind::approve : ActionKind::accept;  // mostly progress
    a.task = task ? task->id : static_cast<TaskId>(rng() % 3);
    if (rng() % 10 == 0 && !before.tasks.empty()) a.task = before.tasks[rng() % before.tasks.size()].id;  // maybe closed
    a.actor = random_actor(before, task);
    if (a.kind == ActionKind::return_to && task) {
      const Flow* f = catalog->find_flow(before.flow);
      a.target = task->node;
      if (f) {
        for (const auto& r : f->returns) {
          if (r.from == task->node && !r.to.empty()) a.target = r.to[rng() % r.to.size()];
        }
      }
    }
    if (a.kind == ActionKind::transfer || a.kind == ActionKind::add_signer) a.target = "u" + std::to_string(rng() % 4);
    if (a.kind == ActionKind::comment || rng() % 4 == 0) a.comment = "note";
    if (rng() % 8 == 0) a.expected_version = before.version - (rng() % 2);
    try {
      const std::uint64_t v = engine->act(a);
      ++accepted;
      CHECK(v == before.version + 1);
    } catch (const Error&) {
      ++refused;
      const Case after = engine->get(id);
      CHECK(after.version == before.version);
      CHECK(engine->history(id).size() == history_before);
    }
    if (rng() % 4 == 0) {
      clock->advance(std::chrono::hours(rng() % 72));
      engine->tick(clock->now());
    }
    engine->run_automatic(id);
  }

  void walk(int cases, int max_steps) {
    for (int i = 0; i < cases; ++i) {
      const auto id = submit();
      if (!id) continue;
      for (int s = 0; s < max_steps; ++s) {
        if (engine->get(*id).status == CaseStatus::finished) break;
        step(*id);
        const HistoryCheck check = engine->verify(*id);
        INFO(check.message);
        REQUIRE(check.ok);
      }
      const Case c = engine->get(*id);
      if (c.status == CaseStatus::finished) {
        CHECK(c.open_tasks().empty());
        outcomes.insert(*c.outcome);
      }
    }
  }
};

void run_theme(const std::string& dir, unsigned seed, std::shared_ptr<Store> store = nullptr, int cases = 700) {
  Walker w(fs::path(ONESTOP_SOURCE_DIR) / "examples" / dir, seed, std::move(store));
  w.walk(cases, 60);
  MESSAGE(dir << ": " << w.accepted << " accepted and " << w.refused << " refused actions");
  CHECK(w.accepted > static_cast<std::size_t>(cases) * 10 / 7);
  CHECK(w.refused > static_cast<std::size_t>(cases) * 10 / 7);
  CHECK(w.outcomes.size() >= 2);
}

}  // namespace

TEST_CASE("random walks: investment project") { run_theme("investment-project", 1); }
TEST_CASE("random walks: business start-up") { run_theme("business-startup", 2); }
TEST_CASE("random walks: residence permit") { run_theme("residence-permit", 3); }

TEST_CASE("random walks with every snapshot round-tripped through the binary codec") {
  for (const auto& [dir, seed] : {std::pair{"investment-project", 11u}, {"business-startup", 12u}, {"residence-permit", 13u}}) {
    auto store = std::make_shared<test_support::RoundTripStore>();
    run_theme(dir, seed, store, 100);
    CHECK(store->commits > 400);
  }
}

TEST_CASE("snapshot codec refuses bytes that are not a snapshot, and flows the catalog lacks") {
  auto r = load_catalog({fs::path(ONESTOP_SOURCE_DIR) / "examples" / "residence-permit", fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
  REQUIRE(r.ok());
  struct Capture final : StoreWrapper {
    using StoreWrapper::StoreWrapper;
    void bind(std::shared_ptr<const CatalogBinding> b) override { binding = b; StoreWrapper::bind(std::move(b)); }
    void commit(Commit c) override {
      last = c.snapshot;
      StoreWrapper::commit(std::move(c));
    }
    std::shared_ptr<const CatalogBinding> binding;
    std::shared_ptr<const CaseSnapshot> last;
  };
  auto capture = std::make_shared<Capture>(open_memory_store());
  EngineOptions o;
  o.store = capture;
  auto engine = open_engine(r.catalog, o);
  REQUIRE(capture->binding);
  CHECK_THROWS_WITH_AS(capture->binding->decode("garbage"), doctest::Contains("not a onestop case snapshot"), Error);
  CHECK_THROWS_WITH_AS(capture->binding->decode(std::string("OSS1") + std::string(40, '\x7f')), doctest::Contains("damaged"), Error);
  // A real snapshot with one byte changed anywhere after the magic is refused, never misread.
  Submission sub;
  sub.target = r.catalog->items.front().code;
  sub.applicant = Applicant{ApplicantKind::natural_person, person, "Zhang San"};
  sub.keep_draft_if_deficient = true;
  engine->submit(sub, Actor::applicant_of(person));
  REQUIRE(capture->last);
  const std::string good = capture->binding->encode(*capture->last);
  CHECK(capture->binding->decode(good) != nullptr);
  for (std::size_t i = 4; i < good.size(); i += 7) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5A);
    CHECK_THROWS_WITH_AS(capture->binding->decode(bad), doctest::Contains("damaged"), Error);
  }
  CHECK(capture->binding->node("no_such_flow", 1, 0) == nullptr);
}
