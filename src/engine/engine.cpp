// The Engine facade: load state, apply the pure core, commit atomically,
// then tell observers and run automatic steps.

#include "common/percentile.hpp"
#include "common/utf8.hpp"
#include "core/application.hpp"
#include "core/compiled.hpp"
#include "core/input.hpp"
#include "core/machine.hpp"
#include "core/state.hpp"

#include <onestop/engine.hpp>
#include <onestop/identity.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <atomic>
#include <cctype>
#include <mutex>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

namespace onestop {

namespace {

class SystemClock final : public Clock {
 public:
  Instant now() const override { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }
};

// What `required_if` reads during pre-review.
class ApplicationContext final : public ExprContext {
 public:
  // has(): the materials offered and those fetched for the application, as
  // the flow's guards see the case's.
  ApplicationContext(const Submission& s, Instant now) : s_(s), now_(now) {}
  Value field(std::string_view path) const override { return core::application_field(path, s_.form, s_.applicant, now_); }
  bool has_material(std::string_view id) const override {
    return std::any_of(s_.materials.begin(), s_.materials.end(), [&](const OfferedMaterial& m) { return m.id == id; });
  }

 private:
  const Submission& s_;
  Instant now_;
};

// Whether `file`'s extension (after the last dot), lower-cased, is `type`.
bool has_extension(std::string_view file, std::string_view type) {
  const auto dot = file.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? std::string_view() : file.substr(dot + 1);
  return ext.size() == type.size() && std::equal(ext.begin(), ext.end(), type.begin(), [](char a, char b) {
           return static_cast<char>(std::tolower(static_cast<unsigned char>(a))) == b;
         });
}

bool form_fits(MaterialForm wanted, MaterialForm offered) {
  switch (wanted) {
    case MaterialForm::electronic: return offered == MaterialForm::electronic;
    case MaterialForm::original: return offered != MaterialForm::copy;
    case MaterialForm::original_and_copy: return offered == MaterialForm::original_and_copy;
    case MaterialForm::copy: return true;
  }
  return true;
}

// What the engine hands its store: the compiled catalog and the snapshot codec.
class Binding final : public CatalogBinding {
 public:
  explicit Binding(std::shared_ptr<const core::CompiledCatalog> compiled) : compiled_(std::move(compiled)) {}
  const std::shared_ptr<const core::CompiledCatalog>& compiled() const noexcept { return compiled_; }
  const Catalog& catalog() const override { return compiled_->catalog(); }
  std::string encode(const CaseSnapshot& s) const override { return core::encode_snapshot(s); }
  std::shared_ptr<const CaseSnapshot> decode(std::string_view bytes) const override {
    return core::decode_snapshot(*compiled_, bytes);
  }
  const Node* node(std::string_view flow, int version, std::uint32_t index) const override {
    const core::CompiledFlow* f = compiled_->flow(flow, version);
    return f == nullptr || index >= f->nodes.size() ? nullptr : f->nodes[index].def;
  }

 private:
  std::shared_ptr<const core::CompiledCatalog> compiled_;
};

// The binding of a catalog, checked and compiled once however many engines
// are opened on it at a time: a host that opens an engine per request on
// one catalog and store compiles it once, and its store is handed one
// binding (a memory store keeps every binding it is handed, for the cases
// that refer into it), not one per engine. Throws Error(invalid_input) when
// the catalog has errors.
std::shared_ptr<const Binding> binding_of(std::shared_ptr<const Catalog> catalog) {
  // Never destroyed: an engine opened while the process exits finds it.
  static auto* const mu = new std::mutex;
  // A catalog outlives its binding's entry: the binding holds it, so an
  // address is not reused while its entry is live.
  static auto* const bindings = new std::map<const Catalog*, std::weak_ptr<const Binding>>;
  const Catalog* key = catalog.get();
  {
    std::lock_guard lock(*mu);
    if (auto it = bindings->find(key); it != bindings->end()) {
      if (auto live = it->second.lock()) return live;
    }
  }
  // Checked and compiled outside the lock: a large catalog holds up no
  // other engine opening.
  for (const auto& d : check_catalog(*catalog)) {
    if (d.severity == Severity::error) {
      throw Error(ErrorCode::invalid_input, "open_engine: the catalog has errors, first: " + d.to_string());
    }
  }
  auto binding = std::make_shared<const Binding>(std::make_shared<const core::CompiledCatalog>(std::move(catalog)));
  std::lock_guard lock(*mu);
  std::erase_if(*bindings, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = (*bindings)[key];
  if (auto first = slot.lock()) return first;  // another thread compiled it meanwhile
  slot = binding;
  return binding;
}

// A state nobody holds any more (its case moved on), kept for the thread's
// next action: the copy that action makes is assigned into its lists
// (frames, tokens, joins, warnings, task chunks) instead of allocating
// them afresh, and the old state is not taken apart. Every state is made
// here or by the codec as a mutable CaseSnapshot (the type is internal),
// so the const the stores hand out is only theirs; with no weak
// references to states, a count of one means nobody else can reach it.
thread_local std::shared_ptr<CaseSnapshot> spare_state;

void recycle(std::shared_ptr<const CaseSnapshot> s) {
  if (s && s.use_count() == 1) {
    // use_count is a relaxed load: what another thread read through a
    // reference it has since dropped happens before the state is written
    // again (as in Shared::edit).
    std::atomic_thread_fence(std::memory_order_acquire);
    spare_state = std::const_pointer_cast<CaseSnapshot>(std::move(s));
  }
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::shared_ptr<const Binding> binding, EngineOptions options)
      : binding_(std::move(binding)), compiled_(binding_->compiled()), options_(std::move(options)) {
    if (!options_.store) options_.store = open_memory_store();
    if (!options_.clock) options_.clock = make_system_clock();
    core::check_follow_up_limit(options_.follow_up_limit);
    options_.store->bind(binding_);
    derives_chain_ = options_.store->derives_chain();
    for (const Item& it : compiled_->catalog().items) {
      for (const Material& m : it.materials) material_ids_.insert(m.id);
    }
  }

  SubmitResult submit(const Submission& submission, const Actor& actor) override {
    core::check_submission(submission, actor);
    const Catalog& cat = compiled_->catalog();
    const Item* item = cat.find_item(submission.target);
    const Theme* theme = item ? nullptr : cat.find_theme(submission.target);
    if (item == nullptr && theme == nullptr) {
      throw Error(ErrorCode::not_found, fmt::format("no item or theme '{}' to apply for", submission.target));
    }
    const core::MaterialPlan& plan = theme ? compiled_->material_plan(*theme) : compiled_->material_plan(*item);
    check_applicant(submission, plan.items);

    Submission complete = submission;
    SubmitResult result;
    result.notice = pre_review(complete, plan);
    if (!result.notice.ok() && !submission.keep_draft_if_deficient) return result;

    auto snapshot = std::make_shared<CaseSnapshot>();
    snapshot->id = options_.store->allocate_case_id();
    snapshot->is_theme = theme != nullptr;
    snapshot->target_version = theme ? theme->version : item->version;
    const Instant now = options_.clock->now();
    const Step step = begin();
    core::Machine m(*compiled_, *snapshot, now, actor.user.empty() ? complete.applicant.id : actor.user, step.hashed);
    m.submit(std::move(complete), !result.notice.ok());
    commit(snapshot, 0, m.events(), step);
    result.case_id = snapshot->id;
    after_commit(snapshot, m.events());
    return result;
  }

  std::uint64_t act(const Action& given) override {
    core::check_action(given);
    const Action* action = &given;
    Action with_limit;
    if (given.kind == ActionKind::evaluate && !given.limit) {
      // The follow-up limit in force is recorded with the action, for replay.
      with_limit = given;
      with_limit.limit = options_.follow_up_limit;
      action = &with_limit;
    }
    // First on the state the store has at hand (Store::load_for_change);
    // when the commit finds that someone committed first, once more on a
    // fresh load: the action is checked again against what is there now.
    Action reviewed;
    for (int attempt = 0;; ++attempt) {
      auto current = load(action->case_id, attempt == 0);
      const Action* taken = action;
      if (action->kind == ActionKind::resubmit) {
        try {
          reviewed = review_resubmission(*current, *action);
        } catch (const Error& e) {
          // Reviewed on the state the store had at hand: once more on a
          // fresh load before the applicant is told it is deficient.
          if (e.code() == ErrorCode::invalid_input && attempt == 0) continue;
          throw;
        }
        taken = &reviewed;
      }
      const Step step = begin();
      auto next = next_state(*current, step);
      core::Machine m(*compiled_, *next, options_.clock->now(), taken->actor.user, step.hashed);
      m.act(*taken);
      try {
        commit(next, current->version, m.events(), step);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::conflict && attempt == 0) continue;
        throw;
      }
      after_commit(next, m.events());
      recycle(std::move(current));
      return next->version;
    }
  }

  Case get(CaseId id) override { return core::to_case(*compiled_, *load(id)); }

  std::vector<InboxEntry> inbox(const InboxQuery& query) override { return options_.store->inbox(query); }

  std::size_t tick(Instant now) override {
    std::size_t fired = 0;
    for (CaseId id : options_.store->due_cases(now, std::numeric_limits<std::size_t>::max())) {
      for (int attempt = 0; attempt < 3; ++attempt) {
        try {
          auto current = load(id, attempt == 0);
          const Step step = begin();
          auto next = next_state(*current, step);
          core::Machine m(*compiled_, *next, now, "system", step.hashed);
          const std::size_t n = m.fire_timers();
          if (n == 0) break;
          commit(next, current->version, m.events(), step);
          fired += n;
          after_commit(next, m.events());
          recycle(std::move(current));
          break;
        } catch (const Error& e) {
          if (e.code() != ErrorCode::conflict) throw;  // another process fired it or acted: look again
        }
      }
    }
    return fired;
  }

  std::size_t run_automatic(CaseId id) override {
    std::size_t ran = 0;
    for (int guard = 0; guard < 1000; ++guard) {
      auto current = load(id);
      if (current->status != CaseStatus::running) break;
      const core::TaskRecord* pending = nullptr;
      for (const auto& t : current->tasks) {
        if (t.state == TaskState::open && !t.failed &&
            current->frames[t.frame].flow->nodes[t.node].def->kind == NodeKind::automatic) {
          pending = &t;
          break;
        }
      }
      if (pending == nullptr) break;
      const Node& def = *current->frames[pending->frame].flow->nodes[pending->node].def;
      StepResult result;
      std::shared_ptr<StepHandler> handler;
      {
        std::lock_guard lock(mu_);
        auto it = handlers_.find(def.handler);
        if (it != handlers_.end()) handler = it->second;
      }
      const Case view = core::to_case(*compiled_, *current);
      auto failed = [](std::string message) {
        StepResult r;
        r.ok = false;
        r.message = std::move(message);
        return r;
      };
      if (!handler) {
        result = failed(fmt::format("no handler '{}' is registered", def.handler));
      } else {
        try {
          result = handler->run(view, *view.find_task(pending->id));
          // A result that cannot be recorded is the handler's failure.
          if (std::string problem = core::step_result_problem(result); !problem.empty()) {
            result = failed(fmt::format("handler '{}' returned a result that cannot be recorded: {}", def.handler, problem));
          }
        } catch (const std::exception& e) {
          result = failed(valid_utf8(e.what()));  // recorded: any byte that is not UTF-8 becomes U+FFFD
        } catch (...) {
          result = failed(fmt::format("handler '{}' threw something other than a std::exception", def.handler));
        }
      }
      const Step step = begin();
      auto next = next_state(*current, step);
      core::Machine m(*compiled_, *next, options_.clock->now(), "system", step.hashed);
      m.handler_result(pending->id, result);
      try {
        commit(next, current->version, m.events(), step);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::conflict) continue;  // someone acted meanwhile: look again
        throw;
      }
      ++ran;
      publish(next, m.events());
    }
    return ran;
  }

  std::vector<Event> history(CaseId id) override {
    load(id);
    return options_.store->history(id);
  }

  HistoryCheck verify(CaseId id) override {
    const auto stored = load(id);
    const auto events = options_.store->history(id);
    HistoryCheck check = verify_history(events);
    if (!check.ok) return check;
    if (std::string problem = core::invariant_violation(*stored); !problem.empty()) {
      return {false, 0, fmt::format("case {} is inconsistent: {}", id, problem)};
    }
    // A state whose chain is pending (Commit::unhashed) ends the history its
    // store derived: it is compared as if it held that history's last hash.
    if (stored->version == 0 || events.empty() || (!stored->chain_pending && events.back().hash != stored->last_hash) ||
        stored->seq != events.back().seq) {
      return {false, 0, fmt::format("case {}: the stored state does not end the stored history", id)};
    }
    std::shared_ptr<const CaseSnapshot> settled = stored;
    if (stored->chain_pending) {
      auto copy = std::make_shared<CaseSnapshot>(*stored);
      copy->last_hash = events.back().hash;
      copy->chain_pending = false;
      settled = std::move(copy);
    }
    std::shared_ptr<const CaseSnapshot> replayed;
    try {
      replayed = core::replay(*compiled_, id, events);
    } catch (const std::exception& e) {
      return {false, 0, fmt::format("replaying case {} failed: {}", id, e.what())};
    }
    if (core::dump(*replayed) != core::dump(*settled)) {
      return {false, 0, fmt::format("replaying the history of case {} does not rebuild its stored state", id)};
    }
    return check;
  }

  void import_case(const std::vector<Event>& events) override {
    if (events.empty()) throw Error(ErrorCode::invalid_input, "import: an empty history");
    const CaseId id = events.front().case_id;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (events[i].case_id != id) {
        throw Error(ErrorCode::invalid_input, fmt::format("import: event {} of case {} belongs to case {}", i + 1, id,
                                                          events[i].case_id));
      }
    }
    if (HistoryCheck check = verify_history(events); !check.ok) {
      throw Error(ErrorCode::invalid_input, fmt::format("import of case {}: {}", id, check.message));
    }
    std::shared_ptr<CaseSnapshot> rebuilt;
    try {
      rebuilt = core::replay(*compiled_, id, events);
    } catch (const Error& e) {
      throw Error(ErrorCode::invalid_input, fmt::format("import of case {}: replaying its history failed: {}", id, e.what()));
    }
    if (rebuilt->last_hash != events.back().hash || rebuilt->seq != events.back().seq) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("import of case {}: replaying its history does not end where the history does", id));
    }
    Commit c;
    c.case_id = id;
    c.expected_version = 0;
    c.new_version = rebuilt->version;
    c.header = core::header_of(*rebuilt);
    c.events = events;
    c.open_tasks = core::open_task_views(*compiled_, *rebuilt);
    c.next_timer = core::next_timer_noting(*compiled_, *rebuilt);
    c.finished = rebuilt->status == CaseStatus::finished;
    c.chained = true;  // verify_history checked every hash above
    c.views_owner = rebuilt;
    c.snapshot = std::move(rebuilt);
    try {
      options_.store->commit(std::move(c));
    } catch (const Error& e) {
      if (e.code() != ErrorCode::conflict) throw;
      throw Error(ErrorCode::conflict, fmt::format("import: case {} is already in this store", id));
    }
  }

  void register_handler(const std::string& name, std::shared_ptr<StepHandler> handler) override {
    std::lock_guard lock(mu_);
    handlers_[name] = std::move(handler);
  }

  void subscribe(std::shared_ptr<Observer> observer) override {
    std::lock_guard lock(mu_);
    observers_.push_back(std::move(observer));
    has_observers_ = true;
  }

  std::shared_ptr<const Catalog> catalog() const override { return compiled_->shared(); }

  SupervisionStats statistics(const StatsQuery& q) override {
    struct Sample {
      std::vector<double> days;
      std::size_t ratings_sum = 0;
      std::size_t satisfied = 0;
    };
    SupervisionStats out;
    std::map<StatsFigures*, Sample> samples;
    samples[&out.total];  // figured even when no case matches: an on-time rate of 1 with none finished
    const Catalog& cat = compiled_->catalog();
    const Instant now = options_.clock->now();
    for (CaseId id : options_.store->case_ids()) {
      const auto s = options_.store->load(id);
      if (!s || s->frames.empty()) continue;
      if (q.from && s->submitted < *q.from) continue;
      if (q.to && s->submitted >= *q.to) continue;
      if (!q.target.empty() && *s->target != q.target) continue;
      std::string department;
      if (s->is_theme) {
        if (const Theme* t = cat.find_theme(*s->target, s->target_version)) department = t->lead_department;
      } else if (const Item* it = cat.find_item(*s->target, s->target_version)) {
        department = it->department;
      }
      if (!q.department.empty() && department != q.department) continue;
      const WorkingCalendar& cal = compiled_->calendar_of(*s->frames[0].flow);
      const std::chrono::year_month_day local = cal.local_date(s->submitted);
      const std::string month = fmt::format("{:04}-{:02}", static_cast<int>(local.year()), static_cast<unsigned>(local.month()));
      for (StatsFigures* f : {&out.total, &out.by_target[*s->target], &out.by_department[department], &out.by_month[month]}) {
        Sample& sample = samples[f];
        ++f->cases;
        const bool finished = s->status == CaseStatus::finished;
        (finished ? f->finished : f->open) += 1;
        if (s->promised_clock) {
          if (finished) {
            (*s->finished <= s->promised_clock->due ? f->finished_on_time : f->finished_overdue) += 1;
          } else if (s->promised_clock->overdue(now)) {
            ++f->open_overdue;
          }
        }
        if (finished) {
          // Working days from submission to the end, suspensions excluded.
          double days = cal.elapsed(s->submitted, *s->finished, TimeUnit::working_days);
          if (s->promised_clock) {
            days -= static_cast<double>(s->promised_clock->suspended.count()) /
                    static_cast<double>(cal.working_day_length().count());
          }
          sample.days.push_back(std::max(0.0, days));
        }
        for (const auto& [key, rule] : s->warned) {
          (void)key;
          const WarningRule& r = compiled_->rules()[rule & 0x7FFF];
          (r.level == WarningLevel::yellow ? f->yellow_warnings : f->red_warnings) += 1;
        }
        const core::CaseExtras& x = *s->extras;
        if (x.evaluation) {
          ++f->evaluations;
          sample.ratings_sum += static_cast<std::size_t>(x.evaluation->rating);
          sample.satisfied += x.evaluation->rating <= 3 ? 1 : 0;
          f->poor_ratings += x.evaluation->poor() ? 1 : 0;
        }
        if (x.follow_up && !x.follow_up->closed) {
          ++f->follow_ups_open;
          f->follow_ups_overdue += now > x.follow_up->due ? 1 : 0;
        }
      }
    }
    for (auto& [f, sample] : samples) {
      f->on_time_rate = f->finished == 0 ? 1.0 : static_cast<double>(f->finished_on_time) / static_cast<double>(f->finished);
      auto& d = sample.days;
      if (!d.empty()) {
        std::sort(d.begin(), d.end());
        double sum = 0;
        for (double x : d) sum += x;
        f->mean_days = sum / static_cast<double>(d.size());
        f->p50_days = nearest_rank(d, 0.50);
        f->p90_days = nearest_rank(d, 0.90);
        f->p99_days = nearest_rank(d, 0.99);
        f->max_days = d.back();
      }
      if (f->evaluations > 0) {
        f->mean_rating = static_cast<double>(sample.ratings_sum) / static_cast<double>(f->evaluations);
        f->satisfaction_rate = static_cast<double>(sample.satisfied) / static_cast<double>(f->evaluations);
      }
    }
    return out;
  }

 private:
  // The case's state (for an action about to change it: what the store has
  // at hand, Store::load_for_change); Error(not_found) when there is none.
  std::shared_ptr<const CaseSnapshot> load(CaseId id, bool for_change = false) {
    auto s = for_change ? options_.store->load_for_change(id) : options_.store->load(id);
    if (!s) throw Error(ErrorCode::not_found, fmt::format("no case {}", id));
    return s;
  }

  // How one action runs: whether observers see its events (read once: one
  // subscribing meanwhile sees the next action's), and whether they are
  // hashed (always, unless the store derives the chain and nobody observes).
  struct Step {
    bool observed = false;
    bool hashed = true;
  };
  Step begin() const {
    const bool observed = has_observers_.load(std::memory_order_relaxed);
    return Step{observed, observed || !derives_chain_};
  }

  // The state an action changes: a copy of `current`. When its events are to
  // be hashed and the chain's end was left to the store (Commit::unhashed,
  // before anyone observed), that end is read back from the store's history.
  std::shared_ptr<CaseSnapshot> next_state(const CaseSnapshot& current, Step step) {
    std::shared_ptr<CaseSnapshot> next;
    if (spare_state) {  // its lists take the copy in the room they have
      next = std::move(spare_state);
      *next = current;
    } else {
      next = std::make_shared<CaseSnapshot>(current);
    }
    if (step.hashed && next->chain_pending) {
      // The history may have moved on since the load (another engine on
      // the store): the hash at the state's own last event, and the commit
      // then finds the newer version (Error(conflict), retried).
      const std::vector<Event> events = options_.store->history(next->id);
      if (next->seq == 0 || events.size() < next->seq || events[next->seq - 1].seq != next->seq) {
        throw Error(ErrorCode::storage, fmt::format("case {}: the stored history has no event {}, the state's last", next->id, next->seq));
      }
      next->last_hash = events[next->seq - 1].hash;
      next->chain_pending = false;
    }
    return next;
  }

  // Commits the change. The events move into the store unless observers
  // still need them.
  void commit(const std::shared_ptr<CaseSnapshot>& next, std::uint64_t expected, std::vector<Event>& events, Step step) {
    Commit c;
    c.case_id = next->id;
    c.expected_version = expected;
    c.new_version = next->version;
    c.snapshot = next;
    c.header = core::header_of(*next);
    if (step.observed) {
      c.events = events;
    } else {
      c.events = std::move(events);
      events.clear();
    }
    c.open_tasks = core::open_task_views(*compiled_, *next);
    c.next_timer = core::next_timer_noting(*compiled_, *next);
    c.finished = next->status == CaseStatus::finished;
    c.chained = step.hashed;  // every hash made by Machine::emit from its event
    c.unhashed = !step.hashed;
    c.views_owner = next;
    options_.store->commit(std::move(c));
  }

  void publish(const std::shared_ptr<const CaseSnapshot>& s, const std::vector<Event>& events) {
    // Nothing to hear, or nobody to hear it (subscribe sets the flag after
    // adding its observer): no lock taken, no list copied.
    if (events.empty() || !has_observers_.load(std::memory_order_acquire)) return;
    std::vector<std::shared_ptr<Observer>> observers;
    {
      std::lock_guard lock(mu_);
      observers = observers_;
    }
    if (observers.empty()) return;
    const Case view = core::to_case(*compiled_, *s);
    for (const auto& e : events) {
      for (const auto& o : observers) {
        try {
          o->on_event(e, view);
        } catch (...) {
          // An observer cannot undo a committed action; its failure is its own.
        }
      }
    }
  }

  void after_commit(const std::shared_ptr<const CaseSnapshot>& s, const std::vector<Event>& events) {
    publish(s, events);
    if (options_.run_handlers_inline && s->status == CaseStatus::running) {
      // An open task is held by a live token: the tokens, not the whole task list.
      const bool pending = std::any_of(s->tokens.begin(), s->tokens.end(), [&](const core::Token& k) {
        if (k.task == 0 || k.task > s->tasks.size()) return false;
        const core::TaskRecord& t = s->tasks[k.task - 1];
        return t.state == TaskState::open && !t.failed &&
               s->frames[t.frame].flow->nodes[t.node].def->kind == NodeKind::automatic;
      });
      if (pending) run_automatic(s->id);
    }
  }

  void check_applicant(const Submission& s, const std::vector<const Item*>& items) const {
    if (s.applicant.kind == ApplicantKind::natural_person) {
      // Nobody applies before being born. Birth dates in resident IDs are
      // Beijing dates, so today is Beijing's (UTC+8), whatever the calendars.
      const std::chrono::year_month_day date{
          std::chrono::floor<std::chrono::days>(options_.clock->now() + std::chrono::hours{8})};
      const int today = static_cast<int>(date.year()) * 10000 + static_cast<int>(static_cast<unsigned>(date.month())) * 100 +
                        static_cast<int>(static_cast<unsigned>(date.day()));
      const IdCheck ok = check_resident_id(s.applicant.id, today);
      if (!ok) throw Error(ErrorCode::invalid_input, fmt::format("applicant resident ID '{}': {}", s.applicant.id, ok.message));
    } else {
      const IdCheck ok = check_credit_code(s.applicant.id, options_.strict_identity ? CheckMode::strict : CheckMode::lenient);
      if (!ok) throw Error(ErrorCode::invalid_input, fmt::format("applicant credit code '{}': {}", s.applicant.id, ok.message));
    }
    for (const Item* it : items) {
      if (std::find(it->applicants.begin(), it->applicants.end(), s.applicant.kind) == it->applicants.end()) {
        throw Error(ErrorCode::invalid_input, fmt::format("item '{}' ({}) does not accept applications from a {}",
                                                          it->code, it->name, to_string(s.applicant.kind)));
      }
    }
    // A material id no item defines is the host's mistake (a typo, a stale
    // form), not a deficiency for the applicant to remedy. (Materials of
    // other items are let through: hosts may offer what they hold.)
    for (const OfferedMaterial& o : s.materials) {
      if (material_ids_.count(o.id) == 0) {
        throw Error(ErrorCode::invalid_input,
                    fmt::format("material '{}' offered for '{}' is not a material of any item", o.id, s.target));
      }
    }
  }

  // A resubmission (a draft completed, a correction answered) is pre-reviewed
  // like a submission, on the application as it will be: one still (or
  // newly: a changed form field makes a material required) deficient is
  // refused with the notice, and nothing changes. Materials the
  // certificate library supplies join the action, so the history records
  // them. A case the action cannot apply to is left to the state machine
  // to refuse.
  Action review_resubmission(const CaseSnapshot& s, const Action& a) const {
    Action out = a;
    // Only the applicant's resubmission of a case waiting for one, not a
    // stale one: anything else the state machine refuses (not_permitted,
    // invalid_state, conflict) before anyone is shown the application.
    if (s.status != CaseStatus::draft && s.status != CaseStatus::waiting_for_applicant) return out;
    if (a.actor.kind != Actor::Kind::applicant || a.actor.user != s.applicant->id) return out;
    if (a.expected_version != 0 && a.expected_version != s.version) return out;
    const Catalog& cat = compiled_->catalog();
    const Theme* theme = s.is_theme ? cat.find_theme(*s.target, s.target_version) : nullptr;
    const Item* item = s.is_theme ? nullptr : cat.find_item(*s.target, s.target_version);
    if (theme == nullptr && item == nullptr) return out;  // no definitions to review it on (stores refuse such catalogs)
    Submission merged;
    merged.target = *s.target;
    merged.applicant = *s.applicant;
    merged.form = *s.form;
    for (const auto& [k, v] : a.form) merged.form[k] = v;
    merged.materials = *s.materials;
    core::merge_materials(merged.materials, a.materials);
    const std::size_t given = merged.materials.size();
    // The case's materials the action leaves as they are: among them those
    // the library supplied at submission, reviewed as such.
    std::vector<bool> kept(given, false);
    for (std::size_t i = 0; i < given; ++i) {
      kept[i] = std::none_of(a.materials.begin(), a.materials.end(),
                             [&](const OfferedMaterial& m) { return m.id == merged.materials[i].id; });
    }
    const PreReviewNotice notice =
        pre_review(merged, theme ? compiled_->material_plan(*theme) : compiled_->material_plan(*item), &kept);
    if (!notice.ok()) {
      std::string list;
      for (const auto& d : notice.deficiencies) list += (list.empty() ? "" : "; ") + d.message;
      throw Error(ErrorCode::invalid_input, fmt::format("case {}: the resubmission leaves the application deficient, "
                                                        "nothing was changed; to correct at once: {}",
                                                        s.id, list));
    }
    for (std::size_t i = given; i < merged.materials.size(); ++i) out.materials.push_back(merged.materials[i]);
    return out;
  }

  // Pre-review (预审): every deficiency at once; fetched materials are added.
  // The items of a theme share one set of materials (一套材料): a material id
  // several items list is looked at once, against every item's definition
  // of it. It is required when any of them requires it (a condition that
  // cannot be evaluated is a deficiency of its own, and leaves the other
  // items to decide), fetched (when not offered) from the first item's
  // source that has it, and, offered or fetched, must suit the form, file
  // types and size of every item that takes it from the applicant; each
  // kind of deficiency is reported once, for the first item it concerns.
  // Whether `o`, kept from a case, is the copy the first of `listed` whose
  // source supplies the material gives (what pre-review fetched at submission).
  bool is_library_copy(const Applicant& applicant, const OfferedMaterial& o,
                       std::span<const core::MaterialPlan::Listing> listed) const {
    if (!options_.certificates) return false;
    for (const auto& x : listed) {
      if (x.material->source == MaterialSource::applicant) continue;
      const std::optional<OfferedMaterial> f = options_.certificates->fetch(applicant, *x.material);
      if (f) return f->file_name == o.file_name && f->bytes == o.bytes && f->form == o.form;
    }
    return false;
  }

  // `kept`: which of the materials a resubmission's application holds come
  // unchanged from the case (those the library supplied at submission among
  // them: is_library_copy tells which).
  PreReviewNotice pre_review(Submission& s, const core::MaterialPlan& plan, const std::vector<bool>* kept = nullptr) const {
    using Listing = core::MaterialPlan::Listing;
    auto find_offered = [&](std::string_view id) {
      return std::find_if(s.materials.begin(), s.materials.end(), [&](const OfferedMaterial& o) { return o.id == id; });
    };
    // Where each group's material is: as offered, else as the first listing
    // whose source (certificate library, shared data) supplies it. Fetched
    // first: has() in a required_if sees them, as the flow's guards do.
    constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
    const std::size_t offered = s.materials.size();
    std::vector<std::size_t> at_of(plan.groups.size(), none);
    std::size_t fetchable = 0;
    for (std::size_t k = 0; k < plan.groups.size(); ++k) {
      const auto it = find_offered(plan.groups[k].id);
      if (it != s.materials.end()) at_of[k] = static_cast<std::size_t>(it - s.materials.begin());
      fetchable += plan.groups[k].supplied && at_of[k] == none ? 1 : 0;
    }
    if (options_.certificates && fetchable > 0) {
      s.materials.reserve(offered + fetchable);  // room once (the case keeps this list)
      for (std::size_t k = 0; k < plan.groups.size(); ++k) {
        if (!plan.groups[k].supplied || at_of[k] != none) continue;
        for (const Listing& x : std::span<const Listing>(plan.listings.data() + plan.groups[k].first, plan.groups[k].count)) {
          if (x.material->source == MaterialSource::applicant) continue;
          std::optional<OfferedMaterial> fetched = options_.certificates->fetch(s.applicant, *x.material);
          if (!fetched) continue;
          fetched->id = x.material->id;
          core::check_fetched_material(*fetched);
          at_of[k] = s.materials.size();
          s.materials.push_back(std::move(*fetched));
          break;
        }
      }
    }
    PreReviewNotice notice;
    const ApplicationContext ctx(s, options_.clock->now());
    for (std::size_t k = 0; k < plan.groups.size(); ++k) {
      const core::MaterialPlan::Group& g = plan.groups[k];
      const std::span<const Listing> listed(plan.listings.data() + g.first, g.count);
      const Listing* required = nullptr;  // the first listing that requires it
      bool unknown = false;               // a condition that cannot be evaluated
      for (const Listing& x : listed) {
        bool needed = x.material->necessity == Necessity::required;
        if (x.material->necessity == Necessity::conditional) {
          try {
            needed = x.material->required_if.test(ctx);
          } catch (const Error& e) {
            if (!unknown) {
              notice.deficiencies.push_back(
                  {Deficiency::Kind::missing, x.item->code, x.material->id,
                   fmt::format("{}: its condition cannot be evaluated on this application ({})", x.material->name, e.what())});
            }
            unknown = true;
            continue;
          }
        }
        if (needed && !required) required = &x;
      }
      const std::size_t at = at_of[k];
      if (at == none) {
        if (!required) continue;
        const Material& m = *required->material;
        if (m.source != MaterialSource::applicant) {
          notice.deficiencies.push_back(
              {Deficiency::Kind::not_available, required->item->code, m.id,
               fmt::format("{}: not available from the {} for this applicant; please provide it", m.name,
                           m.source == MaterialSource::certificate_library ? "electronic certificate library" : "shared data")});
        } else {
          notice.deficiencies.push_back({Deficiency::Kind::missing, required->item->code, m.id,
                                         fmt::format("{}: missing ({}, {} cop{})", m.name, to_string(m.form), m.copies,
                                                     m.copies == 1 ? "y" : "ies")});
        }
        continue;
      }
      // An offered copy must suit every item's definition; a fetched one
      // (now, or kept from the case, where a copy the library supplied at
      // submission sits) every item that takes it from the applicant (an
      // item that takes it from the library takes the library's copy as it is).
      const OfferedMaterial& o = s.materials[at];
      const bool fetched = at >= offered || (kept != nullptr && at < kept->size() && (*kept)[at] && g.supplied &&
                                             is_library_copy(s.applicant, o, listed));
      bool form = false, type = false, size = false;  // reported already
      for (const Listing& x : listed) {
        const Material& m = *x.material;
        if (fetched && m.source != MaterialSource::applicant) continue;
        if (!form && !form_fits(m.form, o.form)) {
          form = true;
          notice.deficiencies.push_back({Deficiency::Kind::wrong_form, x.item->code, m.id,
                                         fmt::format("{}: must be {}, not {}", m.name, to_string(m.form), to_string(o.form))});
        }
        if (!type && !m.file_types.empty() && !o.file_name.empty()) {
          if (std::none_of(m.file_types.begin(), m.file_types.end(),
                           [&](const std::string& t) { return has_extension(o.file_name, t); })) {
            type = true;
            std::string allowed;
            for (const auto& t : m.file_types) allowed += (allowed.empty() ? "" : ", ") + t;
            notice.deficiencies.push_back({Deficiency::Kind::wrong_file_type, x.item->code, m.id,
                                           fmt::format("{}: file '{}' is not one of {}", m.name, o.file_name, allowed)});
          }
        }
        if (!size && m.max_bytes > 0 && o.bytes > m.max_bytes) {
          size = true;
          notice.deficiencies.push_back({Deficiency::Kind::too_large, x.item->code, m.id,
                                         fmt::format("{}: {} bytes is over the limit of {} bytes", m.name, o.bytes, m.max_bytes)});
        }
      }
    }
    return notice;
  }

  std::shared_ptr<const Binding> binding_;  // held here too: a store need not keep it
  std::shared_ptr<const core::CompiledCatalog> compiled_;
  EngineOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<StepHandler>> handlers_;
  std::vector<std::shared_ptr<Observer>> observers_;
  std::atomic<bool> has_observers_{false};
  bool derives_chain_ = false;  // the store's (Store::derives_chain), asked once
  std::unordered_set<std::string> material_ids_;  // every item's
};

}  // namespace

std::shared_ptr<Clock> make_system_clock() { return std::make_shared<SystemClock>(); }

std::unique_ptr<Engine> open_engine(std::shared_ptr<const Catalog> catalog, EngineOptions options) {
  if (!catalog) throw Error(ErrorCode::invalid_input, "open_engine: no catalog");
  return std::make_unique<EngineImpl>(binding_of(std::move(catalog)), std::move(options));
}

}  // namespace onestop
