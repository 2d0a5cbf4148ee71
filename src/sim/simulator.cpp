// The discrete-event simulator. Events (time, sequence) come off one
// priority queue: arrivals, staff finishing a piece of work, applicants
// answering correction requests, staff coming on duty. The engine's own
// timers are fired with Engine::tick at each case's next due instant, which
// the simulator learns, like the work that appears, from the commits passing
// through its Store (the same Commit a live store indexes).

#include "common/percentile.hpp"
#include "core/application.hpp"
#include "core/state.hpp"
#include "core/timer_index.hpp"
#include "sim/random.hpp"
#include "sim/range.hpp"
#include "sim/shift.hpp"

#include <onestop/engine.hpp>
#include <onestop/identity.hpp>
#include <onestop/simulation.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <queue>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace onestop {

namespace {

using sim::never;
using sim::Rng;
using sim::Seconds;
using sim::Shift;

constexpr std::uint32_t none = 0xFFFFFFFFu;

Seconds secs(Instant t) { return t.time_since_epoch().count(); }

// A drawn duration in whole seconds. A draw beyond any run (the gap after a
// rate of 1e-300 an hour) saturates: llround would overflow, and its
// LLONG_MIN clamped to 0 once made arrivals at one instant without end.
Seconds whole_seconds(double x) {
  if (!(x < 1e15)) return never / 2;
  return std::max<Seconds>(0, std::llround(x));
}
// The whole seconds of a gap between arrivals, the fraction carried to the
// next gap: gaps shorter than a second (high rates) add up to the right
// count instead of each rounding to nothing, or to a second.
Seconds gap_seconds(double x, double& carry) {
  x += carry;
  if (!(x < 1e15)) {
    carry = 0;
    return never / 2;
  }
  const double whole = std::floor(x);
  carry = x - whole;
  return static_cast<Seconds>(whole);
}

Instant instant(Seconds s) { return Instant{std::chrono::seconds{s}}; }

std::string where_text(const SourceLocation& w) {
  if (w.file.empty()) return "scenario";
  return w.line > 0 ? fmt::format("{}:{}:{}", w.file, w.line, w.column) : w.file;
}

[[noreturn]] void bad(const SourceLocation& w, const std::string& what) {
  throw Error(ErrorCode::invalid_input, fmt::format("{}: {}", where_text(w), what));
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A step as the simulator serves it: behaviour resolved, figures collected.
struct Step {
  const Node* node = nullptr;
  std::string flow;
  std::string item;
  const Flow* flow_def = nullptr;
  Distribution service;
  double correction = 0, reject = 0, return_to = 0, withdraw = 0;
  std::string return_target;
  Distribution applicant_delay;
  std::vector<std::uint32_t> pools;  // for tasks; countersign places look up their own
  // Figures.
  std::size_t tasks = 0, served = 0, approved = 0, rejected = 0, returned = 0, corrections = 0, withdrawn = 0;
  std::size_t timed_out = 0;
  std::vector<float> waits;  // seconds
  double service_seconds = 0;
};

struct Unit {
  CaseId case_id = 0;
  TaskId task = 0;
  std::uint32_t step = 0;
  std::uint32_t rec = 0;
  std::uint32_t staff = none;
  std::uint32_t enq = 0;  // bumps each time it is queued; older queue entries are stale
  std::string slot;       // countersign place ("role:x", ...), empty for tasks
  // Its wait for staff: the clock runs while it is queued and its case is
  // running, and stands still while the case waits for the applicant. A
  // wait starts when the work appears or is queued again after service.
  Seconds since = 0;      // queued (its clock running) since
  Seconds waited = 0;     // working time waited before its case's suspensions, this wait
  bool waiting = true;    // a wait is going on that is not recorded yet
  Seconds due = never;
  bool counted = true;    // its case is inside the measured window
  enum class State : std::uint8_t { queued, serving, acting, held, done } state = State::queued;
};

struct CaseRec {
  CaseId id = 0;
  std::uint32_t target = 0;
  Seconds submitted = 0;
  Seconds finished = -1;
  Seconds timer = -1;
  // Its promised time limit as of its last commit, which holds until the
  // next: the due instant (moved by suspensions) and, while the clock is
  // paused, when it stopped. The spans [from, to) it was open past that
  // limit are kept for the timeline.
  bool has_limit = false;
  Seconds limit_due = 0;
  Seconds limit_paused = -1;
  Seconds limit_since = 0;
  std::vector<std::pair<Seconds, Seconds>> overdue;
  CaseStatus status = CaseStatus::running;
  std::string outcome;
  std::string applicant;
  std::uint32_t yellow = 0, red = 0;
  bool counted = true;
  bool resubmit_pending = false;
  std::vector<std::pair<TaskId, std::uint32_t>> open;  // open tasks and their units
  std::vector<std::uint32_t> held;                     // units waiting for the case to run again
  std::vector<std::pair<std::string, Seconds>> item_started;
};

struct Pool {
  std::string department;
  std::string role;
  std::vector<std::string> users;
  Shift shift;
  std::vector<std::uint32_t> members;
  std::vector<std::uint32_t> idle;
  struct Entry {
    Seconds k1;
    Seconds k2;
    std::uint64_t seq;
    std::uint32_t unit;
    std::uint32_t enq;
  };
  std::vector<Entry> queue;  // a heap
  bool wake_pending = false;
  double busy = 0;
  std::size_t served = 0;
};

struct Staff {
  Actor actor;
  std::uint32_t pool = 0;
  std::uint32_t unit = none;
  std::uint64_t gen = 0;
  Seconds started = 0;
  Seconds work = 0;
};

struct TargetInfo {
  std::string id;
  std::string name;
  bool is_theme = false;
  const Flow* flow = nullptr;
  std::vector<ApplicantKind> kinds;
  std::vector<OfferedMaterial> materials;
  std::vector<std::size_t> required;  // indexes into materials of required ones
  std::vector<std::pair<ApplicantKind, double>> mix;
  // Figures.
  std::size_t arrived = 0, refused = 0;
  std::size_t submitted = 0;  // including the warm-up's
  std::size_t failed = 0;     // submissions the engine threw on
  std::string failure;     // the first one's message
};

struct ItemRun {
  std::vector<double> days;
  std::map<std::string, std::size_t> outcomes;
  std::size_t started = 0;
};

enum class Ev : std::uint8_t { arrival, service_done, resubmit, wake };

struct SimEvent {
  Seconds t;
  std::uint64_t seq;
  Ev kind;
  std::uint32_t a;
  std::uint64_t b;
  bool operator>(const SimEvent& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

enum Outcome8 : std::uint8_t { o_approve, o_reject, o_return, o_correction, o_withdraw };

const char* regions[] = {"110101", "110105", "310104", "310115", "440305", "440106", "330106", "320102",
                         "510104", "420102", "340102", "610113", "370102", "350203", "500103", "210102"};

class Simulator;

// The store the engine sees: it tells the simulator what each commit
// changed, and hands the commits on to the real store. With a batch of one
// each commit is written at once, as in live use. With more, the store is
// written behind: commits go to it in batches (Store::commit_batch, one
// transaction each) on a second thread, while the run goes on; the Tap
// answers what the engine reads during the run itself: a case's latest
// state (kept for every case still running or waiting on a timer, and for
// any other until its batch is written) and the due timers (of every case:
// the run starts on an empty store and every commit passes here). Queries
// other than those wait until everything is written, so the store never
// answers from stale data. A failed write fails every later call and the
// run.
class Tap final : public StoreWrapper {
 public:
  Tap(std::shared_ptr<Store> target, Simulator& sim, std::size_t batch)
      : StoreWrapper(std::move(target)), sim_(sim), batch_(batch) {}
  ~Tap() override {
    if (!writer_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;  // after the batch it has, if any (its failure, if any, was the run's)
    }
    cv_.notify_all();
    writer_.join();
  }
  void commit(Commit c) override;
  void commit_batch(std::vector<Commit> cs) override {
    for (auto& c : cs) commit(std::move(c));
  }
  // Written behind, ids come from those taken from the store while it had
  // nothing to write: a store that hands out ids under the lock it writes
  // under (SQLite) would hold every arrival up for a whole batch.
  CaseId allocate_case_id() override {
    if (behind()) {
      check();
      if (next_id_ < ids_.size()) return ids_[next_id_++];
    }
    return target().allocate_case_id();
  }
  std::shared_ptr<const CaseSnapshot> load(CaseId id) override {
    if (behind()) {
      check();
      auto it = latest_.find(id);
      if (it != latest_.end()) return it->second.snapshot;
    }
    return target().load(id);
  }
  std::vector<Event> history(CaseId id) override {
    drain();
    return target().history(id);
  }
  std::vector<InboxEntry> inbox(const InboxQuery& q) override {
    drain();
    return target().inbox(q);
  }
  std::vector<CaseId> due_cases(Instant now, std::size_t limit) override {
    if (!behind()) return target().due_cases(now, limit);
    check();
    return timers_.due(now, limit);
  }
  std::vector<CaseId> case_ids() override {
    drain();
    return target().case_ids();
  }
  // Commits reach the store unchanged.
  bool derives_chain() override { return target().derives_chain(); }
  // Writes everything committed so far and waits for it.
  void drain() {
    send(false);
    wait();
  }
  // From now on every commit is written at once (the run is over: what an
  // inspect callback does goes to the store as in live use).
  void write_through() {
    drain();
    batch_ = 1;
    latest_.clear();  // the store answers from now on
    timers_ = {};
  }

 private:
  bool behind() const { return batch_ > 1; }
  void check() const {
    if (!failure_.empty()) throw Error(ErrorCode::storage, failure_);
  }
  // Hands the commits gathered so far to the writer, once it has written
  // the batch before; with `refill`, takes case ids ahead for the next.
  void send(bool refill);
  // Waits for the batch being written; rethrows its failure.
  void wait();
  // The writer thread: writes each batch handed to it.
  void write();
  // Records a failed write: every later call throws it.
  void fail(const std::exception_ptr& error);

  Simulator& sim_;
  std::size_t batch_;
  std::vector<Commit> pending_;
  struct Latest {
    std::shared_ptr<const CaseSnapshot> snapshot;
    std::optional<Instant> timer;
    std::uint64_t batch = 0;  // of its latest commit
    bool finished = false;
  };
  std::unordered_map<CaseId, Latest> latest_;
  core::TimerIndex timers_;
  std::uint64_t batch_no_ = 0;         // the batch being gathered
  std::vector<CaseId> finishing_;      // cases it finishes
  std::vector<CaseId> was_finishing_;  // those of the batch being written
  std::vector<CaseId> ids_;            // case ids taken ahead, handed out from next_id_
  std::size_t next_id_ = 0;
  std::uint64_t writing_no_ = 0;
  std::string failure_;
  // Shared with the writer, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Commit> job_;
  bool has_job_ = false;  // job_ is waiting for the writer
  bool busy_ = false;     // the writer is writing a batch
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread writer_;  // last: started once the rest is in place
};

struct Approver final : StepHandler {
  Approver(double p, Rng& rng) : p_(p), rng_(rng) {}
  StepResult run(const Case&, const Task&) override {
    StepResult r;
    r.decision = rng_.uniform() < p_ ? Decision::approved : Decision::rejected;
    return r;
  }
  double p_;
  Rng& rng_;
};

struct Everything final : CertificateProvider {
  std::optional<OfferedMaterial> fetch(const Applicant&, const Material& m) override {
    return OfferedMaterial{m.id, m.id + ".ofd", 1, MaterialForm::electronic};
  }
};

class Simulator {
 public:
  Simulator(const Scenario& sc, std::shared_ptr<const Catalog> catalog, SimulationOptions options)
      : sc_(sc), options_(std::move(options)), seed_(options_.seed.value_or(sc.seed)),
        r_people_(seed_, 1), r_service_(seed_, 2), r_decide_(seed_, 3), r_delay_(seed_, 4), r_handlers_(seed_, 5) {
    if (!catalog) throw Error(ErrorCode::invalid_input, "simulate: no catalog");
    auto copy = std::make_shared<Catalog>(*catalog);
    if (copy->default_calendar.empty() && !sc.calendar.empty()) copy->default_calendar = sc.calendar;
    catalog_ = copy;
    if (!sc.calendar.empty() && catalog_->find_calendar(sc.calendar) == nullptr) {
      std::vector<std::string> known;
      for (const auto& c : catalog_->calendars) known.push_back(c.id);
      throw Error(ErrorCode::invalid_input,
                  fmt::format("{}: calendar '{}' is not in the definitions (their calendars: {})",
                              sc.calendar_where.line > 0 ? where_text(sc.calendar_where) : (sc.file.empty() ? "scenario" : sc.file),
                              sc.calendar, known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
    }
    calendar_ = sc.calendar.empty() ? (catalog_->default_calendar.empty() ? WorkingCalendar() : WorkingCalendar::resolve(*catalog_, ""))
                                    : WorkingCalendar::resolve(*catalog_, sc.calendar);
    // Checked here for scenarios built in code, not only by the loader: a
    // run past the calendars' years fails on every arrival, and one with no
    // working time never ends.
    check_times();
    check_rates();
    if (!Shift::has_working_weekday(calendar_)) {
      const Calendar* def = catalog_->find_calendar(calendar_.id());
      throw Error(ErrorCode::invalid_input,
                  fmt::format("{}: calendar '{}'{} has no working days (every weekday is a rest day): staff never work "
                              "and time limits in working days never run out",
                              sc.file.empty() ? "scenario" : sc.file, calendar_.id().empty() ? "default" : calendar_.id(),
                              def && def->where.line > 0 ? " (" + where_text(def->where) + ")" : std::string()));
    }
    day_length_ = static_cast<double>(calendar_.working_day_length().count());
    start_ = secs(calendar_.to_utc(std::chrono::local_seconds{sc.start.time_since_epoch()}));
    end_ = start_ + sc.horizon.count();
    measured_from_ = start_ + sc.warmup.count();
    last_ = secs(calendar_.to_utc(std::chrono::local_seconds{sim::last_end}));
    if (!options_.store) options_.store = open_memory_store();
    if (!options_.store->case_ids().empty()) {
      throw Error(ErrorCode::invalid_input, "simulate: the store already holds cases; simulate into an empty store");
    }
    clock_ = std::make_shared<ManualClock>(instant(start_));
    EngineOptions eo;
    tap_ = std::make_shared<Tap>(options_.store, *this, options_.batch);
    eo.store = tap_;
    eo.clock = clock_;
    eo.certificates = std::make_shared<Everything>();
    engine_ = open_engine(catalog_, eo);
    set_up_handlers();
    set_up_targets();
    set_up_staff();
    check_steps();
  }

  SimulationReport run();
  void observe(const Commit& c);

 private:
  // ---- set-up ----

  void check_times() const {
    const std::string who = sc_.file.empty() ? "scenario" : sc_.file;
    auto refuse = [&](const std::string& what) { throw Error(ErrorCode::invalid_input, fmt::format("{}: {}", who, what)); };
    if (!sim::start_in_range(sc_.start)) {
      refuse(sim::start_out_of_range(format_date(std::chrono::year_month_day{sc_.start})));
    }
    if (!sim::ends_in_range(sc_.start, sc_.horizon)) {
      refuse(fmt::format("horizon of {} s: the run must last at least 1 s and end by 9999-12-31 (the calendars cover "
                         "the years 0001..9999)",
                         sc_.horizon.count()));
    }
    if (sc_.warmup.count() < 0 || sc_.warmup >= sc_.horizon) refuse("warmup must be at least 0 and shorter than the horizon");
  }

  // A run is bounded: a rate that would bring more cases than any run can
  // hold (1e12 an hour once filled memory without end) is refused up front.
  // Working-time rates are bounded as if every hour or day were working.
  static constexpr double max_arrivals = 10'000'000;
  void check_rates() const {
    const double seconds = static_cast<double>(sc_.horizon.count());
    double total = 0;
    for (const ArrivalStream& s : sc_.arrivals) {
      if (s.trace) {
        total += static_cast<double>(s.times.size());
        continue;
      }
      const double unit = s.per == ArrivalStream::Per::hour || s.per == ArrivalStream::Per::working_hour ? 3600.0 : 86400.0;
      const double expected = s.rate * seconds / unit;
      if (!(expected <= max_arrivals)) {
        bad(s.where, fmt::format("rate {} per {} over the run ({} s) would bring about {:.3g} cases; a run takes at most "
                                 "{:.0f}: lower the rate or shorten the horizon",
                                 s.rate, to_text(s.per), sc_.horizon.count(), expected, max_arrivals));
      }
      total += expected;
    }
    if (!(total <= max_arrivals)) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("{}: the arrival streams together would bring about {:.3g} cases; a run takes at most {:.0f}",
                              sc_.file.empty() ? "scenario" : sc_.file, total, max_arrivals));
    }
  }

  static std::string_view to_text(ArrivalStream::Per p) {
    switch (p) {
      case ArrivalStream::Per::hour: return "hour";
      case ArrivalStream::Per::day: return "day";
      case ArrivalStream::Per::working_hour: return "working hour";
      case ArrivalStream::Per::working_day: return "working day";
    }
    return "?";
  }

  void set_up_handlers() {
    std::set<std::string> names;
    for (const auto& f : catalog_->flows) {
      for (const auto& n : f.nodes) {
        if (n.kind == NodeKind::automatic) names.insert(n.handler);
      }
    }
    for (const auto& [name, p] : sc_.handlers) {
      if (names.count(name)) continue;
      std::string known;
      for (const auto& x : names) known += (known.empty() ? "" : ", ") + x;
      auto at = sc_.handler_locations.find(name);
      bad(at == sc_.handler_locations.end() ? SourceLocation{sc_.file, 0, 0} : at->second,
          fmt::format("handler '{}' runs no automatic step of the definitions ({})", name,
                      known.empty() ? "they have no automatic steps" : "their handlers: " + known));
    }
    for (const auto& name : names) {
      auto it = sc_.handlers.find(name);
      engine_->register_handler(name, std::make_shared<Approver>(it == sc_.handlers.end() ? 1.0 : it->second, r_handlers_));
    }
  }

  // The complete set of materials an applicant of `t` offers: each material
  // id some item takes from the applicant, once, suiting every such item
  // (those only the certificate library supplies are left to it: the
  // simulated one has everything). Required: those such an item requires
  // outright.
  static void offer_materials(TargetInfo& t, const std::vector<const Item*>& items) {
    std::vector<std::string_view> done;
    for (const Item* i : items) {
      for (const Material& m : i->materials) {
        if (std::find(done.begin(), done.end(), m.id) != done.end()) continue;
        done.push_back(m.id);
        const core::MaterialListing l = core::material_listing(m.id, items);
        if (!l.from_applicant) continue;
        if (l.required) t.required.push_back(t.materials.size());
        t.materials.push_back(OfferedMaterial{m.id, m.id + "." + l.file_type, l.max_bytes > 0 ? std::min<std::int64_t>(l.max_bytes, 1024) : 1024,
                                              l.form == MaterialForm::copy ? MaterialForm::original : l.form});
      }
    }
  }

  void set_up_targets() {
    for (std::size_t k = 0; k < sc_.arrivals.size(); ++k) {
      const ArrivalStream& s = sc_.arrivals[k];
      auto found = target_index_.find(s.target);
      if (found == target_index_.end()) {
        TargetInfo t;
        t.id = s.target;
        std::vector<const Item*> items;
        if (const Item* it = catalog_->find_item(s.target)) {
          t.name = it->name;
          t.flow = catalog_->find_flow(it->flow, it->flow_version);
          items.push_back(it);
        } else if (const Theme* th = catalog_->find_theme(s.target)) {
          t.name = th->name;
          t.is_theme = true;
          t.flow = catalog_->find_flow(th->flow);
          for (const auto& code : catalog_->theme_items(*th)) {
            if (const Item* i2 = catalog_->find_item(code)) items.push_back(i2);
          }
        } else {
          bad(s.where, fmt::format("target '{}' is neither an item code nor a theme id of the definitions", s.target));
        }
        for (ApplicantKind kind : {ApplicantKind::natural_person, ApplicantKind::legal_person, ApplicantKind::other_organisation}) {
          const bool all = std::all_of(items.begin(), items.end(), [&](const Item* i) { return contains_kind(i->applicants, kind); });
          if (all && !items.empty()) t.kinds.push_back(kind);
        }
        if (t.kinds.empty()) bad(s.where, fmt::format("no applicant kind may apply for every item of '{}'", s.target));
        offer_materials(t, items);
        found = target_index_.emplace(s.target, static_cast<std::uint32_t>(targets_.size())).first;
        targets_.push_back(std::move(t));
      }
      TargetInfo& t = targets_[found->second];
      stream_target_.push_back(found->second);
      // The applicant mix of the stream: its own, else the scenario's, else what the target accepts.
      std::vector<std::pair<ApplicantKind, double>> mix = !s.applicants.empty() ? s.applicants : sc_.applicants;
      std::vector<std::pair<ApplicantKind, double>> usable;
      for (const auto& [kind, w] : mix) {
        if (contains_kind(t.kinds, kind) && w > 0) usable.emplace_back(kind, w);
      }
      if (mix.empty()) {
        for (ApplicantKind kind : t.kinds) usable.emplace_back(kind, 1.0);
      }
      if (usable.empty()) {
        bad(s.where, fmt::format("none of the applicant kinds in the mix may apply for '{}'", s.target));
      }
      stream_mix_.push_back(std::move(usable));
      // Form: the scenario's fields, then the stream's (overriding by name).
      std::vector<FieldGenerator> form = sc_.form;
      for (const auto& f : s.form) {
        auto it = std::find_if(form.begin(), form.end(), [&](const FieldGenerator& g) { return g.name == f.name; });
        if (it == form.end()) form.push_back(f);
        else *it = f;
      }
      stream_form_.push_back(std::move(form));
    }
  }

  static bool contains_kind(const std::vector<ApplicantKind>& v, ApplicantKind k) {
    return std::find(v.begin(), v.end(), k) != v.end();
  }

  void set_up_staff() {
    for (const StaffGroup& g : sc_.staff) {
      if (catalog_->find_department(g.department) == nullptr) {
        bad(g.where, fmt::format("department '{}' is not in the definitions", g.department));
      }
      if (!g.role.empty() && catalog_->find_role(g.role) == nullptr) {
        bad(g.where, fmt::format("role '{}' is not in the definitions", g.role));
      }
      // A role the organisation places in one department is held there only.
      if (const Role* r = g.role.empty() ? nullptr : catalog_->find_role(g.role); r && !r->department.empty() && r->department != g.department) {
        bad(g.where, fmt::format("role '{}' belongs to department '{}', not '{}'", g.role, r->department, g.department));
      }
      Pool p{g.department, g.role, g.users, Shift(calendar_, g.hours, g.every_day), {}, {}, {}, false, 0, 0};
      const auto pool = static_cast<std::uint32_t>(pools_.size());
      for (int i = 0; i < g.count; ++i) {
        Staff s;
        const std::string user = !g.users.empty() ? g.users[static_cast<std::size_t>(i)]
                                                  : fmt::format("{}.{}.{}", g.department, g.role.empty() ? "staff" : g.role, i + 1);
        s.actor = Actor::staff_member(user, g.role.empty() ? std::vector<std::string>{} : std::vector<std::string>{g.role},
                                      {g.department});
        s.pool = pool;
        p.members.push_back(static_cast<std::uint32_t>(staff_.size()));
        staff_.push_back(std::move(s));
      }
      // Idle members are taken from the back: the first member first.
      p.idle.assign(p.members.rbegin(), p.members.rend());
      pools_.push_back(std::move(p));
    }
  }

  void check_steps() {
    // A return target on a broad entry (defaults, a whole flow) applies where
    // a step declares that return; it must at least name a node.
    auto check_target = [&](const StepBehaviour& b) {
      if (b.return_target.empty() || !b.node.empty()) return;
      const bool known = std::any_of(catalog_->flows.begin(), catalog_->flows.end(), [&](const Flow& f) {
        return (b.flow.empty() || f.id == b.flow) && f.find_node(b.return_target) != nullptr;
      });
      if (!known) {
        bad(b.where, fmt::format("return_to '{}' is not a node of {}", b.return_target,
                                 b.flow.empty() ? std::string("any flow") : "flow '" + b.flow + "'"));
      }
    };
    check_target(sc_.defaults);
    for (const StepBehaviour& b : sc_.steps) check_target(b);
    for (const StepBehaviour& b : sc_.steps) {
      bool found = false;
      for (const auto& f : catalog_->flows) {
        if (!b.flow.empty() && f.id != b.flow) continue;
        if (b.node.empty()) {
          found = true;
          break;
        }
        if (const Node* n = f.find_node(b.node)) {
          found = true;
          if (n->kind != NodeKind::task && n->kind != NodeKind::countersign) {
            bad(b.where, fmt::format("node '{}' of flow '{}' is a {} step: only task and countersign steps are served by staff",
                                     b.node, f.id, to_string(n->kind)));
          }
        }
      }
      if (!found) {
        bad(b.where, b.node.empty() ? fmt::format("flow '{}' is not in the definitions", b.flow)
                                    : fmt::format("no flow{} has a node '{}'", b.flow.empty() ? "" : " '" + b.flow + "'", b.node));
      }
    }
    // A `return` on an entry that names its node must have a declared return
    // to take: refused here like the other inconsistencies with the
    // definitions. Broader entries (defaults, a whole flow) apply where they
    // can; on steps without returns they approve, with a warning at run time.
    for (const auto& f : catalog_->flows) {
      for (const auto& n : f.nodes) {
        if (n.kind != NodeKind::task && n.kind != NodeKind::countersign) continue;
        const auto layers = layers_of(f.id, n.id);
        const StepBehaviour* chance = nullptr;
        const StepBehaviour* target = nullptr;
        // The probabilities as the step merges them, field by field: each
        // entry's own sum is checked when read, the merged one here.
        double merged[4] = {0, 0, 0, 0};
        const StepBehaviour* last = nullptr;
        for (const StepBehaviour* b : layers) {
          if (b == nullptr) continue;
          if (b->return_to) chance = b;
          if (!b->return_target.empty()) target = b;
          const std::optional<double>* fields[4] = {&b->correction, &b->reject, &b->return_to, &b->withdraw};
          for (int i = 0; i < 4; ++i) {
            if (*fields[i]) {
              merged[i] = **fields[i];
              last = b;
            }
          }
        }
        const std::vector<std::string> declared = declared_returns(f, n.id);
        // As step_of takes them: a return the step cannot take approves instead.
        if (declared.empty() || (target != nullptr && !contains(declared, target->return_target))) merged[2] = 0;
        if (const double sum = merged[0] + merged[1] + merged[2] + merged[3]; sum > 1 + 1e-12 && last != nullptr) {
          std::string from;
          for (const StepBehaviour* b : layers) {
            if (b == nullptr || (!b->correction && !b->reject && !b->return_to && !b->withdraw)) continue;
            from += fmt::format("{}{}", from.empty() ? "" : ", ", b == &sc_.defaults ? "defaults" : where_text(b->where));
          }
          bad(last->where, fmt::format("step {}/{}: correction {} + reject {} + return {} + withdraw {} = {} is more than 1 "
                                       "once its entries are merged ({})",
                                       f.id, n.id, merged[0], merged[1], merged[2], merged[3], sum, from));
        }
        // A return target written for this very step must be one it declares,
        // whether or not a return probability applies to it.
        if (target != nullptr && (target == layers[2] || target == layers[3])) {
          if (!contains(declared, target->return_target)) {
            std::string list;
            for (const auto& d : declared) list += (list.empty() ? "" : ", ") + d;
            bad(target->where, fmt::format("step {}/{} cannot return to '{}' ({})", f.id, n.id, target->return_target,
                                           list.empty() ? "it declares no returns" : "its declared returns: " + list));
          }
        }
        if (chance == nullptr || *chance->return_to <= 0) continue;
        const bool named = chance == layers[2] || chance == layers[3] || (target && (target == layers[2] || target == layers[3]));
        if (!named) continue;
        const StepBehaviour* at = (chance == layers[2] || chance == layers[3]) ? chance : target;
        if (declared.empty()) {
          bad(at->where, fmt::format("step {}/{} has a 'return' probability but the flow declares no return from '{}' "
                                     "(declare one in the flow's returns, or drop 'return')",
                                     f.id, n.id, n.id));
        }
        if (target && !contains(declared, target->return_target)) {
          std::string list;
          for (const auto& d : declared) list += (list.empty() ? "" : ", ") + d;
          bad(at->where, fmt::format("step {}/{} cannot return to '{}' (its declared returns: {})", f.id, n.id,
                                     target->return_target, list));
        }
      }
    }
  }

  // The behaviour entries that apply to a node, least specific first:
  // defaults, flow alone, node alone, flow + node (absent ones null).
  std::array<const StepBehaviour*, 4> layers_of(std::string_view flow, std::string_view node) const {
    std::array<const StepBehaviour*, 4> layers{&sc_.defaults, nullptr, nullptr, nullptr};
    for (const auto& b : sc_.steps) {
      if (b.flow == flow && b.node.empty()) layers[1] = &b;
      if (b.flow.empty() && b.node == node) layers[2] = &b;
      if (b.flow == flow && b.node == node) layers[3] = &b;
    }
    return layers;
  }

  // The nodes a node of a flow may return to, in declaration order.
  static std::vector<std::string> declared_returns(const Flow& flow, const std::string& node) {
    std::vector<std::string> out;
    for (const auto& r : flow.returns) {
      if (r.from == node) out.insert(out.end(), r.to.begin(), r.to.end());
    }
    return out;
  }

  bool pool_matches_assignees(const Pool& p, const Node& n) const {
    if (p.members.empty()) return false;  // `count: 0` is as good as no group
    const Assignees& a = n.assignees;
    if (!p.role.empty() && contains(a.roles, p.role)) return true;
    if (contains(a.departments, p.department)) return true;
    for (const auto& u : p.users) {
      if (contains(a.users, u) || contains(n.signers, u)) return true;
    }
    return false;
  }

  bool pool_matches_slot(const Pool& p, const std::string& slot) const {
    if (p.members.empty()) return false;
    const auto colon = slot.find(':');
    const std::string kind = slot.substr(0, colon);
    const std::string who = slot.substr(colon + 1);
    if (kind == "role") return p.role == who;
    if (kind == "department") return p.department == who;
    return contains(p.users, who);
  }

  const std::vector<std::uint32_t>& slot_pools(const std::string& slot) {
    auto it = slot_pools_.find(slot);
    if (it != slot_pools_.end()) return it->second;
    std::vector<std::uint32_t> out;
    for (std::uint32_t i = 0; i < pools_.size(); ++i) {
      if (pool_matches_slot(pools_[i], slot)) out.push_back(i);
    }
    if (out.empty()) warn_once("countersign place " + slot + " has no staff in the scenario: it is never signed");
    return slot_pools_.emplace(slot, std::move(out)).first->second;
  }

  // Distinct warnings, in order; after max_warnings only counted (a
  // warning per arrival of a long run once grew a list searched linearly).
  static constexpr std::size_t max_warnings = 100;
  void warn_once(std::string w) {
    if (warned_.count(w)) return;
    if (warnings_.size() >= max_warnings) {
      ++warnings_left_out_;
      return;
    }
    warned_.insert(w);
    warnings_.push_back(std::move(w));
  }

  // The step of a node, resolving its behaviour the first time.
  std::uint32_t step_of(const OpenTaskView& e) {
    auto it = step_index_.find(e.node);
    if (it != step_index_.end()) return it->second;
    Step s;
    s.node = e.node;
    s.flow = e.flow;
    s.item = e.item;
    s.flow_def = catalog_->find_flow(e.flow, e.flow_version);
    // Most specific wins: flow+node, node, flow, defaults.
    const auto layers = layers_of(e.flow, e.node->id);
    s.service = Distribution{Distribution::Kind::fixed, 3600, 0, 0, {}, {}};
    s.applicant_delay = Distribution{Distribution::Kind::uniform, 86400, 3 * 86400.0, 0, {}, {}};
    for (const StepBehaviour* b : layers) {
      if (b == nullptr) continue;
      if (b->service) s.service = *b->service;
      if (b->applicant_delay) s.applicant_delay = *b->applicant_delay;
      if (b->correction) s.correction = *b->correction;
      if (b->reject) s.reject = *b->reject;
      if (b->return_to) s.return_to = *b->return_to;
      if (b->withdraw) s.withdraw = *b->withdraw;
      if (!b->return_target.empty()) s.return_target = b->return_target;
    }
    if (s.return_to > 0) {
      const std::vector<std::string> declared = s.flow_def ? declared_returns(*s.flow_def, e.node->id) : std::vector<std::string>{};
      if (s.return_target.empty() && !declared.empty()) s.return_target = declared.front();
      if (s.return_target.empty()) {
        warn_once(fmt::format("step {}/{} has a return probability but declares no return: it approves instead", e.flow, e.node->id));
        s.return_to = 0;
      } else if (!contains(declared, s.return_target)) {
        // The engine would refuse the action (invalid_input) and end the run.
        warn_once(fmt::format("step {}/{} does not declare a return to '{}': it approves instead", e.flow, e.node->id,
                              s.return_target));
        s.return_to = 0;
      }
    }
    if (e.node->kind != NodeKind::countersign) {
      for (std::uint32_t i = 0; i < pools_.size(); ++i) {
        if (pool_matches_assignees(pools_[i], *e.node)) s.pools.push_back(i);
      }
      if (s.pools.empty()) {
        warn_once(fmt::format("step {}/{} has no staff in the scenario: its tasks wait until they time out", e.flow, e.node->id));
      }
    }
    const auto id = static_cast<std::uint32_t>(steps_.size());
    steps_.push_back(std::move(s));
    step_index_.emplace(e.node, id);
    return id;
  }

  // ---- events ----

  void schedule(Seconds t, Ev kind, std::uint32_t a, std::uint64_t b = 0) { events_.push(SimEvent{t, ++seq_, kind, a, b}); }

  Seconds next_arrival(std::size_t k, Seconds after) {
    const ArrivalStream& s = sc_.arrivals[k];
    if (s.trace) {
      while (trace_pos_[k] < s.times.size()) {
        const Seconds t = secs(calendar_.to_utc(s.times[trace_pos_[k]++]));
        if (t >= after) return t;
      }
      return never;
    }
    Rng& rng = arrival_rng_[k];
    double& carry = arrival_carry_[k];
    switch (s.per) {
      case ArrivalStream::Per::hour: return after + gap_seconds(rng.exponential(3600.0 / s.rate), carry);
      case ArrivalStream::Per::day: return after + gap_seconds(rng.exponential(86400.0 / s.rate), carry);
      case ArrivalStream::Per::working_hour:
        return arrival_shift_->add(arrival_shift_->next_on(after), gap_seconds(rng.exponential(3600.0 / s.rate), carry));
      case ArrivalStream::Per::working_day:
        return arrival_shift_->add(arrival_shift_->next_on(after), gap_seconds(rng.exponential(day_length_ / s.rate), carry));
    }
    return never;
  }

  std::string resident_id() {
    const std::string region = regions[r_people_.below(std::size(regions))];
    const auto born = std::chrono::year_month_day{std::chrono::sys_days{std::chrono::year{1955} / 1 / 1} +
                                                  std::chrono::days{r_people_.below(50 * 365)}};
    std::string first17 = fmt::format("{}{:04}{:02}{:02}{:03}", region, static_cast<int>(born.year()),
                                      static_cast<unsigned>(born.month()), static_cast<unsigned>(born.day()),
                                      r_people_.below(1000));
    return first17 + resident_id_check_char(first17);
  }

  std::string credit_code() {
    static const std::string alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    static const int weights[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    std::string org;
    int sum = 0;
    for (int i = 0; i < 8; ++i) {
      const char c = alphabet[r_people_.below(alphabet.size())];
      org += c;
      const int v = c <= '9' ? c - '0' : c - 'A' + 10;
      sum += v * weights[i];
    }
    const int check = 11 - sum % 11;
    org += check == 10 ? 'X' : check == 11 ? '0' : static_cast<char>('0' + check);
    const std::string first17 = std::string("91") + regions[r_people_.below(std::size(regions))] + org;
    return first17 + credit_code_check_char(first17);
  }

  void arrive(std::uint32_t k) {
    const Seconds now = now_;
    const Seconds next = next_arrival(k, now);
    if (next < end_) schedule(next, Ev::arrival, k);
    TargetInfo& t = targets_[stream_target_[k]];
    const ArrivalStream& s = sc_.arrivals[k];
    const bool counted = now >= measured_from_;
    if (counted) ++t.arrived;
    ++t.submitted;
    Submission sub;
    sub.target = t.id;
    const auto& mix = stream_mix_[k];
    std::vector<double> w;
    for (const auto& m : mix) w.push_back(m.second);
    const ApplicantKind kind = mix[r_people_.pick(w)].first;
    const std::uint64_t n = ++applicants_;
    sub.applicant = kind == ApplicantKind::natural_person
                        ? Applicant{kind, resident_id(), fmt::format("Applicant {}", n)}
                        : Applicant{kind, credit_code(), fmt::format("Enterprise {} Co., Ltd.", n)};
    for (const FieldGenerator& g : stream_form_[k]) sub.form[g.name] = generate(g);
    sub.materials = t.materials;
    if (s.incomplete > 0 && !t.required.empty() && r_people_.chance(s.incomplete)) {
      sub.materials.erase(sub.materials.begin() + static_cast<std::ptrdiff_t>(t.required[r_people_.below(t.required.size())]));
    }
    ++events_count_;
    ++actions_;
    pending_target_ = stream_target_[k];
    pending_counted_ = counted;
    pending_applicant_ = sub.applicant.id;
    SubmitResult r;
    try {
      r = engine_->submit(sub, Actor::applicant_of(sub.applicant.id));
    } catch (const Error& e) {
      // A store that cannot write (a full disk) ends the run with its own
      // error: the submission was not refused, and the run cannot go on
      // without the store.
      if (e.code() == ErrorCode::storage) throw;
      // One warning per target, with the count (the messages differ by case).
      if (t.failed++ == 0) t.failure = e.what();
      if (counted) ++t.refused;
      return;
    }
    if (!r.accepted() && counted) ++t.refused;
  }

  Value generate(const FieldGenerator& g) {
    switch (g.kind) {
      case FieldGenerator::Kind::constant: return g.constant;
      case FieldGenerator::Kind::choice: {
        std::vector<double> w;
        for (const auto& c : g.choices) w.push_back(c.second);
        return g.choices[r_people_.pick(w)].first;
      }
      case FieldGenerator::Kind::number: return Value(r_people_.sample(g.number));
      case FieldGenerator::Kind::integer: return Value(std::round(r_people_.sample(g.number)));
    }
    return Value();
  }

  // ---- queues and staff ----

  void enqueue(std::uint32_t u) {
    Unit& unit = units_[u];
    unit.state = Unit::State::queued;
    ++unit.enq;
    const Step& step = steps_[unit.step];
    const std::vector<std::uint32_t>& pools = unit.slot.empty() ? step.pools : slot_pools(unit.slot);
    const Seconds k1 = sc_.nearest_deadline_first ? unit.due : unit.since;
    const Seconds k2 = sc_.nearest_deadline_first ? unit.since : 0;
    for (std::uint32_t p : pools) {
      pools_[p].queue.push_back(Pool::Entry{k1, k2, ++qseq_, u, unit.enq});
      std::push_heap(pools_[p].queue.begin(), pools_[p].queue.end(), later);
    }
    for (std::uint32_t p : pools) {
      if (unit.state != Unit::State::queued) break;
      dispatch(p);
    }
  }

  static bool later(const Pool::Entry& a, const Pool::Entry& b) {
    if (a.k1 != b.k1) return a.k1 > b.k1;
    if (a.k2 != b.k2) return a.k2 > b.k2;
    return a.seq > b.seq;
  }

  void dispatch(std::uint32_t p) {
    Pool& pool = pools_[p];
    std::vector<Pool::Entry> deferred;  // countersign places no idle member may still sign
    while (!pool.idle.empty() && !pool.queue.empty()) {
      if (!pool.shift.on(now_)) {
        if (!pool.wake_pending) {
          pool.wake_pending = true;
          schedule(pool.shift.next_on(now_), Ev::wake, p);
        }
        return;
      }
      std::pop_heap(pool.queue.begin(), pool.queue.end(), later);
      const Pool::Entry e = pool.queue.back();
      pool.queue.pop_back();
      Unit& unit = units_[e.unit];
      if (unit.state != Unit::State::queued || unit.enq != e.enq) continue;
      CaseRec& rec = cases_[unit.rec];
      if (rec.status != CaseStatus::running) {
        // Held when its case stopped running (observe); should one slip
        // through, it is held from now.
        pause(e.unit);
        continue;
      }
      // A countersign task is signed once per person: a member who signed
      // another of its places is not given this one.
      std::size_t pick = pool.idle.size() - 1;
      if (!unit.slot.empty()) {
        const auto it = signing_.find({unit.case_id, unit.task});
        if (it != signing_.end()) {
          pick = pool.idle.size();
          for (std::size_t i = pool.idle.size(); i-- > 0;) {
            if (!contains_staff(it->second, pool.idle[i])) {
              pick = i;
              break;
            }
          }
          if (pick == pool.idle.size()) {
            deferred.push_back(e);
            continue;
          }
        }
      }
      const std::uint32_t s = pool.idle[pick];
      pool.idle.erase(pool.idle.begin() + static_cast<std::ptrdiff_t>(pick));
      start_service(s, e.unit);
    }
    for (const auto& e : deferred) {
      pool.queue.push_back(e);
      std::push_heap(pool.queue.begin(), pool.queue.end(), later);
    }
  }

  static bool contains_staff(const std::vector<std::uint32_t>& v, std::uint32_t s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }

  void start_service(std::uint32_t s, std::uint32_t u) {
    Staff& st = staff_[s];
    Unit& unit = units_[u];
    Step& step = steps_[unit.step];
    record_wait(unit, now_);
    unit.state = Unit::State::serving;
    unit.staff = s;
    const Seconds work = whole_seconds(r_service_.sample(step.service));
    st.unit = u;
    st.started = now_;
    st.work = work;
    ++st.gen;
    schedule(pools_[st.pool].shift.add(now_, work), Ev::service_done, s, st.gen);
  }

  // A piece of work's wait for staff, recorded when it ends (service began,
  // it went unserved, the run ended at `until`): the time it was queued
  // while its case was running, in the calendar's working time (a task
  // created at closing time has not waited all night). The time its case
  // waited for the applicant is left out, whether or not anyone looked at
  // the queue meanwhile. Only work of cases inside the measured window
  // counts.
  void record_wait(Unit& unit, Seconds until) {
    if (!unit.waiting) return;  // held after its service: its wait was recorded then
    Seconds w = unit.waited;
    if (unit.state == Unit::State::queued) w += arrival_shift_->between(unit.since, std::max(unit.since, until));
    unit.waiting = false;
    unit.waited = 0;
    if (unit.counted) steps_[unit.step].waits.push_back(static_cast<float>(w));
  }

  // Queued work of a case that stopped running (a correction requested at
  // another step) is held: its wait so far is kept and its clock stops now,
  // to run on when the case runs again.
  void pause(std::uint32_t u) {
    Unit& unit = units_[u];
    unit.waited += arrival_shift_->between(unit.since, std::max(unit.since, now_));
    unit.since = now_;
    unit.state = Unit::State::held;
    cases_[unit.rec].held.push_back(u);
  }

  // The working time of staff member `s` on the task now ending that lies in
  // the measured window (after the warmup), as the departments' figures count.
  Seconds measured_work(const Staff& st, bool finished) const {
    if (now_ <= measured_from_) return 0;
    if (finished && st.started >= measured_from_) return st.work;
    return pools_[st.pool].shift.between(std::max(st.started, measured_from_), now_);
  }

  // A staff member is free again (finished, or their task vanished).
  void release(std::uint32_t s, bool finished) {
    Staff& st = staff_[s];
    Pool& pool = pools_[st.pool];
    pool.busy += static_cast<double>(measured_work(st, finished));
    if (finished && now_ >= measured_from_) ++pool.served;
    st.unit = none;
    ++st.gen;
    pool.idle.push_back(s);
    dispatch(st.pool);
  }

  void service_done(std::uint32_t s, std::uint64_t gen) {
    Staff& st = staff_[s];
    if (st.gen != gen || st.unit == none) return;  // the task vanished meanwhile
    const std::uint32_t u = st.unit;
    Unit& unit = units_[u];
    Step& step = steps_[unit.step];
    if (unit.counted) {
      ++step.served;
      step.service_seconds += static_cast<double>(st.work);
    }
    // How it ends.
    const double x = r_decide_.uniform();
    std::uint8_t outcome = o_approve;
    if (x < step.correction) outcome = o_correction;
    else if (x < step.correction + step.reject) outcome = o_reject;
    else if (x < step.correction + step.reject + step.return_to) outcome = o_return;
    else if (x < step.correction + step.reject + step.return_to + step.withdraw) outcome = o_withdraw;
    unit.staff = none;
    CaseRec& rec = cases_[unit.rec];
    if (rec.status != CaseStatus::running) {
      // The case went back to the applicant meanwhile: the work is looked at
      // again once the correction is in.
      unit.state = Unit::State::held;
      rec.held.push_back(u);
      release(s, true);
      return;
    }
    decide(u, outcome, &st.actor, s);
    release(s, true);
  }

  // An action whose actor starts from the strings and lists of the last
  // decision's (given back when it ends): a staff actor (user, roles,
  // departments) was copied afresh for every action.
  struct ActionLease {
    explicit ActionLease(Simulator& sim) : sim_(sim) { action.actor = std::move(sim_.spare_actor_); }
    ~ActionLease() { sim_.spare_actor_ = std::move(action.actor); }
    ActionLease(const ActionLease&) = delete;
    ActionLease& operator=(const ActionLease&) = delete;
    Simulator& sim_;
    Action action;
  };

  // Applies a decision on a unit through the engine.
  // `staff`: who decides (none for the applicant's withdrawal).
  void decide(std::uint32_t u, std::uint8_t outcome, const Actor* actor, std::uint32_t staff = none) {
    Unit& unit = units_[u];
    const std::uint32_t step_id = unit.step;
    const Step& step = steps_[step_id];
    const std::uint32_t r = unit.rec;
    ActionLease lease(*this);
    Action& a = lease.action;
    a.case_id = unit.case_id;
    a.task = unit.task;
    a.actor = *actor;  // into the strings and lists of an earlier action: no allocation
    switch (outcome) {
      case o_approve: a.kind = ActionKind::approve; break;
      case o_reject: a.kind = ActionKind::reject; break;
      case o_return:
        a.kind = ActionKind::return_to;
        a.target = step.return_target;
        break;
      case o_correction: a.kind = ActionKind::request_correction; break;
      case o_withdraw:
        a.kind = ActionKind::withdraw;
        a.task = 0;
        a.actor = Actor::applicant_of(cases_[r].applicant);
        break;
      default: break;
    }
    unit.state = Unit::State::acting;
    ++events_count_;
    ++actions_;
    try {
      engine_->act(a);
    } catch (const Error& e) {
      if (outcome == o_withdraw && e.code() == ErrorCode::invalid_state) {
        --events_count_;  // the refused withdrawal was no event; the decision that follows is
        --actions_;
        decide(u, o_approve, actor, staff);  // too late to withdraw: the staff member decides
        return;
      }
      if (e.code() != ErrorCode::invalid_state && e.code() != ErrorCode::conflict && e.code() != ErrorCode::not_permitted) throw;
      ++failed_actions_;
      if (failed_actions_ <= 3) warn_once(fmt::format("an action was refused: {}", e.what()));
      units_[u].state = Unit::State::done;
      return;
    }
    Unit& after = units_[u];
    Step& done_step = steps_[step_id];
    // A countersign place signed: its signer is given no other place of the
    // task (a correction request signs nothing: the place comes back).
    if (!after.slot.empty() && staff != none && (outcome == o_approve || outcome == o_reject)) {
      signing_[{after.case_id, after.task}].push_back(staff);
    }
    if (after.counted) {
      switch (outcome) {
        case o_approve: ++done_step.approved; break;
        case o_reject: ++done_step.rejected; break;
        case o_return: ++done_step.returned; break;
        case o_correction: ++done_step.corrections; break;
        case o_withdraw: ++done_step.withdrawn; break;
        default: break;
      }
    }
    if (outcome == o_correction) {
      if (after.counted) ++corrections_;  // the KPI totals, like the steps', leave the warmup's cases out
      CaseRec& rec = cases_[r];
      if (after.state == Unit::State::acting) {
        after.state = Unit::State::held;
        rec.held.push_back(u);
      }
      if (!rec.resubmit_pending) {
        rec.resubmit_pending = true;
        const Seconds delay = whole_seconds(r_delay_.sample(done_step.applicant_delay));
        schedule(now_ + delay, Ev::resubmit, r);
      }
      return;
    }
    if (outcome == o_return && after.counted) ++returns_;
    if (after.state == Unit::State::acting) after.state = Unit::State::done;  // a countersign place signed
  }

  void resubmit(std::uint32_t r) {
    CaseRec& rec = cases_[r];
    rec.resubmit_pending = false;
    if (rec.status != CaseStatus::waiting_for_applicant) return;
    Action a;
    a.kind = ActionKind::resubmit;
    a.case_id = rec.id;
    a.actor = Actor::applicant_of(rec.applicant);
    ++events_count_;
    ++actions_;
    try {
      engine_->act(a);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::storage) throw;  // as for a submission
      warn_once(fmt::format("a resubmission was refused: {}", e.what()));
      return;
    }
    // The work put aside while the case waited is queued again.
    if (cases_[r].status != CaseStatus::running) return;
    std::vector<std::uint32_t> held;
    held.swap(cases_[r].held);
    for (std::uint32_t u : held) {
      if (!alive(u, r)) continue;
      // Its clock runs on (or, for work served while the case waited, a
      // new wait begins).
      units_[u].since = now_;
      units_[u].waiting = true;
      enqueue(u);
    }
  }

  // Whether unit `u` is still a held piece of work of case record `r`.
  bool alive(std::uint32_t u, std::uint32_t r) const {
    if (units_[u].state != Unit::State::held || units_[u].rec != r) return false;
    return std::any_of(cases_[r].open.begin(), cases_[r].open.end(), [&](const auto& x) { return x.second == u; });
  }

  std::uint32_t new_unit() {
    if (!free_units_.empty()) {
      const std::uint32_t u = free_units_.back();
      free_units_.pop_back();
      const std::uint32_t enq = units_[u].enq;
      units_[u] = Unit{};
      units_[u].enq = enq;
      return u;
    }
    units_.emplace_back();
    return static_cast<std::uint32_t>(units_.size() - 1);
  }

  void unit_gone(std::uint32_t u) {
    Unit& unit = units_[u];
    switch (unit.state) {
      case Unit::State::acting:
        unit.state = Unit::State::done;
        break;
      case Unit::State::serving: {
        if (unit.counted) ++steps_[unit.step].timed_out;
        const std::uint32_t s = unit.staff;
        unit.state = Unit::State::done;
        staff_[s].unit = none;
        release(s, false);
        break;
      }
      case Unit::State::queued:
      case Unit::State::held:
        // It waited until it went (timed out, cancelled), or, held, until
        // its case was suspended: that wait counts, or a step nobody gets
        // to would look like one without waiting.
        record_wait(unit, now_);
        if (unit.counted) ++steps_[unit.step].timed_out;
        unit.state = Unit::State::done;
        break;
      case Unit::State::done: break;
    }
    if (!unit.slot.empty()) signing_.erase({unit.case_id, unit.task});  // the task is gone for all its places
    ++unit.enq;
    free_units_.push_back(u);
  }

  // Overdue as the supervision figures count it (open_overdue, the on-time
  // rate): open past the case's promised limit, whose due instant a
  // suspension moves and which stands still while paused; warning rules
  // play no part. The limit of the case's last commit holds from then to
  // `to`: the part of that span past it is kept.
  static void close_limit_span(CaseRec& rec, Seconds to) {
    if (!rec.has_limit) return;
    Seconds from = rec.limit_since;
    if (rec.limit_paused >= 0) {
      if (rec.limit_paused <= rec.limit_due) return;  // stopped before it ran out
    } else {
      from = std::max(from, rec.limit_due + 1);  // overdue once past the due instant
    }
    if (from >= to) return;
    if (!rec.overdue.empty() && rec.overdue.back().second == from) {
      rec.overdue.back().second = to;
    } else {
      rec.overdue.emplace_back(from, to);
    }
  }

  // A commit of the case: the span of its limit before it ends here, and
  // the limit it leaves holds from now (none once the case has finished).
  void note_limit(CaseRec& rec, const Commit& c) const {
    close_limit_span(rec, now_);
    rec.has_limit = false;
    if (c.finished || c.header.status == CaseStatus::finished || !c.snapshot || !c.snapshot->promised_clock) return;
    const LimitClock& clock = *c.snapshot->promised_clock;
    rec.has_limit = true;
    rec.limit_due = secs(clock.due);
    rec.limit_paused = clock.paused_at ? secs(*clock.paused_at) : -1;
    rec.limit_since = now_;
  }

  void push_timer(std::uint32_t r, Seconds t) {
    timers_.push(TimerEntry{t, ++timer_seq_, r});
  }

  struct TimerEntry {
    Seconds t;
    std::uint64_t seq;
    std::uint32_t rec;
    bool operator>(const TimerEntry& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  SimulationReport report();

  // ---- state ----
  const Scenario& sc_;
  SimulationOptions options_;
  std::uint64_t seed_;
  std::shared_ptr<const Catalog> catalog_;
  WorkingCalendar calendar_;
  double day_length_ = 25200;
  Seconds start_ = 0, end_ = 0, measured_from_ = 0, now_ = 0;
  std::shared_ptr<ManualClock> clock_;
  std::shared_ptr<Tap> tap_;
  std::unique_ptr<Engine> engine_;
  Rng r_people_, r_service_, r_decide_, r_delay_, r_handlers_;
  std::vector<Rng> arrival_rng_;
  std::vector<std::size_t> trace_pos_;
  std::vector<double> arrival_carry_;  // per stream: the fraction of a second the last gap left over
  std::optional<Shift> arrival_shift_;

  std::vector<TargetInfo> targets_;
  std::unordered_map<std::string, std::uint32_t> target_index_;
  std::vector<std::uint32_t> stream_target_;
  std::vector<std::vector<std::pair<ApplicantKind, double>>> stream_mix_;
  std::vector<std::vector<FieldGenerator>> stream_form_;

  std::vector<Pool> pools_;
  std::vector<Staff> staff_;
  std::vector<Step> steps_;
  std::unordered_map<const Node*, std::uint32_t> step_index_;
  std::map<std::string, std::vector<std::uint32_t>> slot_pools_;
  Actor spare_actor_;  // see ActionLease
  std::vector<Unit> units_;
  std::vector<std::uint32_t> free_units_;
  std::vector<CaseRec> cases_;
  std::unordered_map<CaseId, std::uint32_t> case_index_;
  std::map<std::string, ItemRun> item_runs_;
  std::vector<std::uint32_t> fresh_;
  std::map<std::pair<CaseId, TaskId>, std::vector<std::uint32_t>> signing_;  // countersign tasks: who signed

  std::priority_queue<SimEvent, std::vector<SimEvent>, std::greater<>> events_;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
  std::uint64_t seq_ = 0, qseq_ = 0, timer_seq_ = 0;

  std::uint32_t pending_target_ = 0;
  bool pending_counted_ = true;
  std::string pending_applicant_;
  std::uint64_t applicants_ = 0;
  std::uint64_t events_count_ = 0, actions_ = 0, failed_actions_ = 0;
  std::size_t corrections_ = 0, returns_ = 0, escalations_ = 0, deemed_ = 0;
  std::vector<std::string> warnings_;
  std::unordered_set<std::string> warned_;
  std::size_t warnings_left_out_ = 0;
  Seconds ended_ = 0, last_ = 0;
};

void Tap::commit(Commit c) {
  if (!behind()) {
    sim_.observe(c);
    target().commit(std::move(c));
    return;
  }
  // A full batch goes to the writer first: whatever that throws (the batch
  // before it failed), this commit has not been taken.
  if (pending_.size() >= batch_) send(true);
  check();
  sim_.observe(c);
  Latest& l = latest_[c.case_id];
  l.snapshot = c.snapshot;
  timers_.move(c.case_id, l.timer, c.next_timer);
  l.timer = c.next_timer;
  l.batch = batch_no_;
  l.finished = c.finished;
  if (c.finished) finishing_.push_back(c.case_id);
  pending_.push_back(std::move(c));
}

void Tap::send(bool refill) {
  if (pending_.empty()) return;
  wait();  // may throw: nothing is taken from pending_ before
  if (refill) {
    // Ids for the arrivals while the writer writes (each makes a commit:
    // a batch's worth), taken while the store has nothing to write. At
    // best: should the store refuse, it is asked at each arrival instead.
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(next_id_));
    next_id_ = 0;
    try {
      while (ids_.size() < batch_) ids_.push_back(target().allocate_case_id());
    } catch (...) {
    }
  }
  if (!writer_.joinable()) {
    try {
      writer_ = std::thread([this] { write(); });
    } catch (...) {  // no thread to be had: the batch is written here, now
    }
  }
  std::vector<Commit> batch;
  batch.swap(pending_);
  was_finishing_.swap(finishing_);
  finishing_.clear();
  writing_no_ = batch_no_++;
  if (!writer_.joinable()) {
    try {
      target().commit_batch(std::move(batch));
    } catch (...) {
      fail(std::current_exception());  // every later call throws
    }
    return;
  }
  {
    std::lock_guard lock(mu_);
    job_ = std::move(batch);
    has_job_ = true;
  }
  cv_.notify_all();
}

void Tap::wait() {
  check();
  std::exception_ptr error;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !has_job_ && !busy_; });
    error = std::exchange(error_, nullptr);
  }
  if (error) {
    fail(error);
    check();
  }
  // Finished cases of the batch now written, unless changed since or due
  // a timer: their states are read from the store from now on.
  for (CaseId id : was_finishing_) {
    auto it = latest_.find(id);
    if (it != latest_.end() && it->second.batch == writing_no_ && it->second.finished && !it->second.timer) latest_.erase(it);
  }
  was_finishing_.clear();
}

void Tap::fail(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    failure_ = fmt::format("simulate: writing a batch of commits to the store failed: {}", e.what());
  } catch (...) {
    failure_ = "simulate: writing a batch of commits to the store failed";
  }
}

void Tap::write() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return has_job_ || stop_; });
    if (!has_job_) return;  // stopped, nothing left
    std::vector<Commit> batch = std::move(job_);
    job_.clear();
    has_job_ = false;
    busy_ = true;
    lock.unlock();
    std::exception_ptr error;
    try {
      target().commit_batch(std::move(batch));
    } catch (...) {
      error = std::current_exception();
    }
    batch = {};  // the commits' states and views let go of outside the lock
    lock.lock();
    busy_ = false;
    error_ = error;
    cv_.notify_all();
  }
}

void Simulator::observe(const Commit& c) {
  auto found = case_index_.find(c.case_id);
  if (found == case_index_.end()) {
    CaseRec rec;
    rec.id = c.case_id;
    rec.target = pending_target_;
    rec.counted = pending_counted_;
    rec.applicant = pending_applicant_;
    rec.submitted = c.header.submitted.time_since_epoch().count();
    found = case_index_.emplace(c.case_id, static_cast<std::uint32_t>(cases_.size())).first;
    cases_.push_back(std::move(rec));
  }
  const std::uint32_t r = found->second;
  const bool was_running = cases_[r].status == CaseStatus::running;
  cases_[r].status = c.header.status;
  if (was_running && c.header.status != CaseStatus::running) {
    // The case stopped (waiting for the applicant): its queued work stops
    // waiting for staff now, not when a pool next looks at its queue.
    for (const auto& [task, u] : cases_[r].open) {
      if (units_[u].state == Unit::State::queued) pause(u);
    }
  }
  for (const Event& e : c.events) {
    CaseRec& rec = cases_[r];
    switch (e.kind) {
      case EventKind::warning: {
        (e.to == "red" ? rec.red : rec.yellow) += 1;
        break;
      }
      case EventKind::escalated: escalations_ += rec.counted ? 1 : 0; break;
      case EventKind::deemed_consent: {
        deemed_ += rec.counted ? 1 : 0;
        if (e.task == 0 && targets_[rec.target].flow) {
          // A subflow deemed approved: its item run ends here.
          if (const Node* n = targets_[rec.target].flow->find_node(e.node); n && !n->item.empty()) {
            for (auto& [item, t0] : rec.item_started) {
              if (item == n->item && t0 >= 0) {
                if (rec.counted) {
                  ItemRun& run = item_runs_[item];
                  run.days.push_back(static_cast<double>(calendar_.working_time(instant(t0), e.at).count()) / day_length_);
                  run.outcomes["deemed_approved"] += 1;
                }
                t0 = -1;
              }
            }
          }
        }
        break;
      }
      case EventKind::subflow_started: {
        if (rec.counted) item_runs_[e.to].started += 1;
        bool set = false;
        for (auto& [item, t0] : rec.item_started) {
          if (item == e.to) {
            if (t0 >= 0 && rec.counted) item_runs_[item].outcomes["cancelled"] += 1;
            t0 = secs(e.at);
            set = true;
          }
        }
        if (!set) rec.item_started.emplace_back(e.to, secs(e.at));
        break;
      }
      case EventKind::subflow_finished:
        for (auto& [item, t0] : rec.item_started) {
          if (item == e.payload && t0 >= 0) {
            if (rec.counted) {
              ItemRun& run = item_runs_[item];
              run.days.push_back(static_cast<double>(calendar_.working_time(instant(t0), e.at).count()) / day_length_);
              run.outcomes[e.to] += 1;
            }
            t0 = -1;
          }
        }
        break;
      case EventKind::finished:
        rec.outcome = e.to;
        rec.finished = secs(e.at);
        for (auto& [item, t0] : rec.item_started) {
          if (t0 >= 0 && rec.counted) item_runs_[item].outcomes["cancelled"] += 1;
          t0 = -1;
        }
        break;
      default: break;
    }
  }
  // Open tasks: new ones become work, vanished ones stop being work.
  {
    std::vector<std::pair<TaskId, std::uint32_t>> open;
    open.reserve(c.open_tasks.size());
    for (const OpenTaskView& e : c.open_tasks) {
      bool known = false;
      for (const auto& [task, u] : cases_[r].open) {
        if (task == e.task) {
          open.emplace_back(task, u);
          // A suspension moves the due instant: queues by deadline take the new one.
          const Seconds due = e.due ? secs(*e.due) : never;
          if (units_[u].due != due) {
            units_[u].due = due;
            if (sc_.nearest_deadline_first && units_[u].state == Unit::State::queued) fresh_.push_back(u);  // queued again
          }
          known = true;
        }
      }
      if (known) continue;
      const std::uint32_t step = step_of(e);
      std::vector<std::string> slots;
      if (e.node->kind == NodeKind::countersign) {
        if (!e.node->signers.empty()) {
          for (const auto& u : e.node->signers) slots.push_back("user:" + u);
        } else {
          for (const auto& u : e.node->assignees.users) slots.push_back("user:" + u);
          for (const auto& x : e.node->assignees.roles) slots.push_back("role:" + x);
          for (const auto& d : e.node->assignees.departments) slots.push_back("department:" + d);
        }
        for (const auto& u : e.extra_users) slots.push_back("user:" + u);
      } else {
        slots.emplace_back();
      }
      for (auto& slot : slots) {
        const std::uint32_t u = new_unit();
        Unit& unit = units_[u];
        unit.case_id = c.case_id;
        unit.task = e.task;
        unit.step = step;
        unit.rec = r;
        unit.slot = std::move(slot);
        unit.since = now_;
        unit.due = e.due ? secs(*e.due) : never;
        unit.counted = cases_[r].counted;
        if (unit.counted) ++steps_[step].tasks;
        open.emplace_back(e.task, u);
        fresh_.push_back(u);
      }
    }
    for (const auto& was : cases_[r].open) {
      const bool still = std::any_of(open.begin(), open.end(), [&](const auto& x) { return x.second == was.second; });
      if (!still) unit_gone(was.second);
    }
    cases_[r].open = std::move(open);
  }
  note_limit(cases_[r], c);
  const Seconds timer = c.next_timer ? secs(*c.next_timer) : -1;
  if (timer != cases_[r].timer) {
    cases_[r].timer = timer;
    if (timer >= 0) push_timer(r, timer);
  }
  // Queue the new work after the bookkeeping (a commit may also end units).
  std::vector<std::uint32_t> fresh;
  fresh.swap(fresh_);
  for (std::uint32_t u : fresh) {
    if (units_[u].state != Unit::State::queued) continue;
    if (cases_[r].status == CaseStatus::running) {
      enqueue(u);
    } else {
      pause(u);
    }
  }
}

SimulationReport Simulator::run() {
  now_ = start_;
  arrival_shift_.emplace(calendar_, std::vector<WorkingPeriod>{}, false);
  for (const ArrivalStream& s : sc_.arrivals) {
    if (!s.trace) continue;
    const std::chrono::local_seconds from{sc_.start};
    const std::chrono::local_seconds to = from + sc_.horizon;
    const auto outside = std::count_if(s.times.begin(), s.times.end(), [&](auto t) { return t < from || t >= to; });
    if (outside > 0) {
      warn_once(fmt::format("{}: {} of {} trace times lie outside the run ({} to {}): they are left out", where_text(s.where),
                            outside, s.times.size(), calendar_.format_local(instant(start_)),
                            calendar_.format_local(instant(end_))));
    }
  }
  for (std::size_t k = 0; k < sc_.arrivals.size(); ++k) {
    arrival_rng_.emplace_back(seed_, 100 + k);
    trace_pos_.push_back(0);
    arrival_carry_.push_back(0);
    const Seconds first = next_arrival(k, start_);
    if (first >= start_ && first < end_) schedule(first, Ev::arrival, static_cast<std::uint32_t>(k));
  }
  const Seconds hard_stop = sc_.drain ? std::min(last_, end_ + 10 * (end_ - start_)) : end_;
  Seconds last_tick = -1;
  std::uint64_t tick_seq = 0;
  double reported = 0;
  bool stopped_at_limit = false;
  for (;;) {
    // The next engine timer still current.
    Seconds t_timer = never;
    while (!timers_.empty()) {
      const TimerEntry& te = timers_.top();
      const bool stale = cases_[te.rec].timer != te.t || (te.t <= last_tick && te.seq <= tick_seq);
      if (stale) {
        timers_.pop();
        continue;
      }
      t_timer = te.t;
      break;
    }
    const Seconds t_event = events_.empty() ? never : events_.top().t;
    const Seconds t = std::min(t_timer, t_event);
    if (t == never) break;
    if (t > hard_stop) {
      stopped_at_limit = true;
      break;
    }
    if (t_timer < t_event) {
      now_ = std::max(now_, t_timer);
      clock_->set(instant(now_));
      last_tick = now_;
      tick_seq = timer_seq_;
      events_count_ += engine_->tick(instant(now_));
      continue;
    }
    const SimEvent e = events_.top();
    events_.pop();
    now_ = std::max(now_, e.t);
    clock_->set(instant(now_));
    switch (e.kind) {
      case Ev::arrival: arrive(e.a); break;
      case Ev::service_done: service_done(e.a, e.b); break;
      case Ev::resubmit: resubmit(e.a); break;
      case Ev::wake:
        pools_[e.a].wake_pending = false;
        dispatch(e.a);
        break;
    }
    if (options_.progress && end_ > start_) {
      const double share = std::min(1.0, static_cast<double>(now_ - start_) / static_cast<double>(end_ - start_));
      if (share >= reported + 0.01) {
        reported = share;
        options_.progress(share);
      }
    }
  }
  ended_ = sc_.drain ? std::max(now_, end_) : end_;
  if (failed_actions_ > 0) {
    // Counted, past the cap on warnings: refused actions are staff time for nothing.
    warnings_.push_back(fmt::format("{} simulated action{} refused by the engine (the first are listed above)",
                                    failed_actions_, failed_actions_ == 1 ? " was" : "s were"));
  }
  if (sc_.drain) {
    // Draining ends when nothing is left to happen or at ten horizons past
    // the end; cases still open then are said to be, and why.
    const auto open = std::count_if(cases_.begin(), cases_.end(), [](const CaseRec& c) { return c.status != CaseStatus::finished; });
    if (open > 0) {
      // Said even past the cap on warnings: it qualifies the whole report.
      warnings_.push_back(fmt::format(
          "drain: {} case{} still open when the run stopped: {}", open, open == 1 ? " was" : "s were",
          !stopped_at_limit ? "nothing was left that could move them (work no staff serve, cases in error or waiting for "
                              "an applicant who does not answer)"
          : hard_stop == last_ ? "the calendars end (9999-12-31)"
                               : "draining stops ten horizons after the end"));
    }
  }
  now_ = ended_;
  clock_->set(instant(now_));
  // Staff still at work: count their time so far.
  for (std::uint32_t s = 0; s < staff_.size(); ++s) {
    if (staff_[s].unit != none) pools_[staff_[s].pool].busy += static_cast<double>(measured_work(staff_[s], false));
  }
  tap_->write_through();
  if (options_.progress) options_.progress(1.0);
  SimulationReport out = report();
  if (options_.inspect) options_.inspect(*engine_);
  return out;
}

Summary summarise(std::vector<double> v) {
  Summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  s.p50 = nearest_rank(v, 0.5);
  s.p90 = nearest_rank(v, 0.9);
  s.p99 = nearest_rank(v, 0.99);
  s.max = v.back();
  return s;
}

std::vector<std::size_t> histogram(const std::vector<double>& days) {
  std::vector<std::size_t> h;
  for (double d : days) {
    const auto bin = static_cast<std::size_t>(std::min(60.0, std::floor(std::max(0.0, d))));
    if (h.size() <= bin) h.resize(bin + 1, 0);
    ++h[bin];
  }
  return h;
}

SimulationReport Simulator::report() {
  SimulationReport out;
  out.scenario = sc_.name;
  out.seed = seed_;
  out.calendar = calendar_.id().empty() ? "default" : calendar_.id();
  out.start = calendar_.format_local(instant(start_)).substr(0, 10);
  out.horizon_end = calendar_.format_local(instant(end_));
  out.ended = calendar_.format_local(instant(ended_));
  if (measured_from_ > start_) out.measured_from = calendar_.format_local(instant(measured_from_));
  out.horizon_working_days = static_cast<double>(calendar_.working_time(instant(measured_from_), instant(end_)).count()) / day_length_;
  out.events = events_count_;
  out.actions = actions_;
  out.corrections = corrections_;
  out.returns = returns_;
  out.escalations = escalations_;
  out.deemed_consents = deemed_;
  out.warnings = warnings_;
  for (const TargetInfo& t : targets_) {
    if (t.failed > 0) {
      out.warnings.push_back(fmt::format("{} of {} submissions for '{}' failed; the first: {}", t.failed, t.submitted, t.id, t.failure));
    }
  }
  if (warnings_left_out_ > 0) out.warnings.push_back(fmt::format("{} more warnings left out", warnings_left_out_));

  StatsQuery q;
  q.from = instant(measured_from_);
  const SupervisionStats stats = engine_->statistics(q);

  // Per target applied for.
  std::vector<std::vector<double>> days(targets_.size());
  std::vector<TargetFigures> figures(targets_.size());
  std::size_t on_time = 0, finished_all = 0;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    figures[i].target = targets_[i].id;
    figures[i].name = targets_[i].name;
    figures[i].is_theme = targets_[i].is_theme;
    figures[i].arrived = targets_[i].arrived;
    figures[i].refused = targets_[i].refused;
  }
  for (const CaseRec& rec : cases_) {
    if (!rec.counted) continue;
    TargetFigures& f = figures[rec.target];
    f.yellow += rec.yellow;
    f.red += rec.red;
    if (rec.finished >= 0 && rec.finished <= ended_) {
      ++f.finished;
      f.outcomes[rec.outcome] += 1;
      days[rec.target].push_back(static_cast<double>(calendar_.working_time(instant(rec.submitted), instant(rec.finished)).count()) / day_length_);
    } else {
      ++f.open;
    }
  }
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    TargetFigures& f = figures[i];
    f.cycle_days = summarise(days[i]);
    f.histogram = histogram(days[i]);
    auto it = stats.by_target.find(f.target);
    if (it != stats.by_target.end()) {
      const StatsFigures& s = it->second;
      f.on_time = s.finished_on_time;
      f.overdue = s.finished_overdue;
      f.open_overdue = s.open_overdue;
      f.on_time_rate = s.on_time_rate;
      f.handling_days = Summary{s.finished, s.mean_days, s.p50_days, s.p90_days, s.p99_days, s.max_days};
    }
    on_time += f.on_time;
    finished_all += f.on_time + f.overdue;
    out.arrived += f.arrived;
    out.refused += f.refused;
    out.finished += f.finished;
    out.open += f.open;
    out.yellow += f.yellow;
    out.red += f.red;
    out.targets.push_back(std::move(f));
  }
  out.on_time_rate = finished_all == 0 ? 1.0 : static_cast<double>(on_time) / static_cast<double>(finished_all);
  out.rated = finished_all;
  // Cases finished within the horizon (not those a drain finished later):
  // what the staffing achieved in the time measured.
  std::size_t finished_in_horizon = 0;
  for (const CaseRec& rec : cases_) finished_in_horizon += rec.counted && rec.finished >= 0 && rec.finished <= end_ ? 1 : 0;
  out.throughput_per_working_day =
      out.horizon_working_days > 0 ? static_cast<double>(finished_in_horizon) / out.horizon_working_days : 0;
  // Items run inside themes.
  for (auto& [code, run] : item_runs_) {
    TargetFigures f;
    f.target = code;
    if (const Item* it = catalog_->find_item(code)) f.name = it->name;
    f.part_of = "theme";
    f.arrived = run.started;
    f.finished = run.days.size();
    const std::size_t cancelled = run.outcomes.count("cancelled") ? run.outcomes.at("cancelled") : 0;
    f.open = run.started >= f.finished + cancelled ? run.started - f.finished - cancelled : 0;
    f.outcomes = run.outcomes;
    f.cycle_days = summarise(run.days);
    f.histogram = histogram(run.days);
    out.targets.push_back(std::move(f));
  }

  // Departments.
  std::map<std::string, DepartmentFigures> departments;
  std::vector<double> pool_util(pools_.size(), 0);
  for (std::size_t p = 0; p < pools_.size(); ++p) {
    Pool& pool = pools_[p];
    DepartmentFigures& d = departments[pool.department];
    d.department = pool.department;
    if (const Department* dep = catalog_->find_department(pool.department)) d.name = dep->name;
    d.staff += pool.members.size();
    const double available =
        static_cast<double>(pool.shift.between(measured_from_, ended_)) * static_cast<double>(pool.members.size());
    d.available_hours += available / 3600;
    d.busy_hours += pool.busy / 3600;
    d.served += pool.served;
    pool_util[p] = available > 0 ? pool.busy / available : 0;
  }
  for (auto& [id, d] : departments) {
    d.utilisation = d.available_hours > 0 ? d.busy_hours / d.available_hours : 0;
    out.departments.push_back(d);
  }

  // Work still queued at the end has waited until then (and goes on); work
  // held by a case waiting for the applicant, until the case stopped.
  for (Unit& u : units_) {
    if (u.state == Unit::State::queued || u.state == Unit::State::held) record_wait(u, ended_);
  }
  // Steps, in flow order of first appearance.
  std::vector<std::uint32_t> order(steps_.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return std::tie(steps_[a].flow, steps_[a].node->id) < std::tie(steps_[b].flow, steps_[b].node->id);
  });
  const double cases_arrived = std::max<double>(1.0, static_cast<double>(out.arrived - out.refused));
  for (std::uint32_t i : order) {
    Step& s = steps_[i];
    StepFigures f;
    f.flow = s.flow;
    f.node = s.node->id;
    f.name = s.node->name.empty() ? s.node->id : s.node->name;
    f.item = s.item;
    std::set<std::string> by;
    std::vector<std::uint32_t> pools = s.pools;
    if (s.node->kind == NodeKind::countersign) {
      for (const auto& [slot, ps] : slot_pools_) {
        if ((slot.rfind("role:", 0) == 0 && contains(s.node->assignees.roles, slot.substr(5))) ||
            (slot.rfind("department:", 0) == 0 && contains(s.node->assignees.departments, slot.substr(11))) ||
            (slot.rfind("user:", 0) == 0 && (contains(s.node->assignees.users, slot.substr(5)) || contains(s.node->signers, slot.substr(5))))) {
          pools.insert(pools.end(), ps.begin(), ps.end());
        }
      }
    }
    double util = 0;
    for (std::uint32_t p : pools) {
      by.insert(pools_[p].role.empty() ? pools_[p].department : pools_[p].department + "/" + pools_[p].role);
      util = std::max(util, pool_util[p]);
    }
    for (const auto& b : by) f.staffed_by += (f.staffed_by.empty() ? "" : ", ") + b;
    f.tasks = s.tasks;
    f.served = s.served;
    f.approved = s.approved;
    f.rejected = s.rejected;
    f.returned = s.returned;
    f.corrections = s.corrections;
    f.withdrawn = s.withdrawn;
    f.timed_out = s.timed_out;
    std::vector<double> waits(s.waits.begin(), s.waits.end());
    double total = 0;
    for (double& w : waits) {
      w /= 3600;
      total += w;
    }
    f.wait_hours = summarise(std::move(waits));
    f.total_wait_hours = total;
    f.mean_service_hours = s.served > 0 ? s.service_seconds / static_cast<double>(s.served) / 3600 : 0;
    if (s.served > 0 || s.tasks > 0) {
      out.bottlenecks.push_back(Bottleneck{f.flow + "/" + f.node, total / cases_arrived, f.wait_hours.mean, util});
    }
    out.steps.push_back(std::move(f));
  }
  std::stable_sort(out.bottlenecks.begin(), out.bottlenecks.end(), [](const Bottleneck& a, const Bottleneck& b) {
    return a.score != b.score ? a.score > b.score : a.utilisation > b.utilisation;
  });
  if (out.bottlenecks.size() > 10) out.bottlenecks.resize(10);

  // Open and overdue cases at the end of each day: overdue past the
  // promised limit, as open_overdue (see close_limit_span), so the last day
  // gives the targets' open_overdue.
  std::vector<Seconds> submitted, finished, overdue, overdue_ended;
  for (CaseRec& rec : cases_) {
    if (!rec.counted) continue;  // as every other figure: not the warmup's cases
    submitted.push_back(rec.submitted);
    if (rec.finished >= 0) finished.push_back(rec.finished);
    close_limit_span(rec, never);  // a case still open stays as its last commit left it
    for (const auto& [from, to] : rec.overdue) {
      overdue.push_back(from);
      overdue_ended.push_back(to);
    }
  }
  for (auto* v : {&submitted, &finished, &overdue, &overdue_ended}) std::sort(v->begin(), v->end());
  auto upto = [](const std::vector<Seconds>& v, Seconds t) {
    return static_cast<std::size_t>(std::upper_bound(v.begin(), v.end(), t) - v.begin());
  };
  const auto first_day = calendar_.local_date(instant(start_));
  for (std::int64_t d = 0;; ++d) {
    const auto day = std::chrono::sys_days{first_day} + std::chrono::days{d};
    const Seconds close = secs(calendar_.to_utc(std::chrono::local_seconds{(day + std::chrono::days{1}).time_since_epoch()})) - 1;
    if (close > ended_ + 86400 || d > 20000) break;
    const Seconds at = std::min(close, ended_);
    TimelinePoint p;
    p.date = calendar_.format_local(instant(at)).substr(0, 10);
    p.open = upto(submitted, at) - upto(finished, at);
    p.overdue = upto(overdue, at) - upto(overdue_ended, at);
    out.timeline.push_back(p);
    if (at == ended_) break;
  }
  // The flows applied for, with their subflows, for graphs.
  std::set<std::pair<std::string, int>> flows;
  for (const TargetInfo& t : targets_) {
    if (t.flow == nullptr || !flows.insert({t.flow->id, t.flow->version}).second) continue;
    out.flows.emplace_back(t.flow->id, t.flow->version);
  }
  for (const Step& s : steps_) {
    if (s.flow_def && flows.insert({s.flow_def->id, s.flow_def->version}).second) out.flows.emplace_back(s.flow_def->id, s.flow_def->version);
  }
  return out;
}

}  // namespace

SimulationReport simulate(const Scenario& scenario, std::shared_ptr<const Catalog> catalog, SimulationOptions options) {
  Simulator sim(scenario, std::move(catalog), std::move(options));
  return sim.run();
}

void check_scenario(const Scenario& scenario, std::shared_ptr<const Catalog> catalog) {
  SimulationOptions options;
  options.store = open_memory_store();
  const Simulator sim(scenario, std::move(catalog), std::move(options));  // set up, checked, never run
}

double erlang_c_wait(double lambda, double mu, int c) {
  const double a = lambda / mu;
  const double rho = a / c;
  if (rho >= 1) return std::numeric_limits<double>::infinity();
  double sum = 0;
  double term = 1;  // a^k / k!
  for (int k = 0; k < c; ++k) {
    if (k > 0) term *= a / k;
    sum += term;
  }
  const double top = term * a / c / (1 - rho);  // a^c / c! / (1 - rho)
  const double p_wait = top / (sum + top);
  return p_wait / (c * mu - lambda);
}

}  // namespace onestop
