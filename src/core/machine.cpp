#include "core/machine.hpp"

#include "core/application.hpp"

#include <onestop/calendar.hpp>
#include <onestop/identity.hpp>

#include <boost/container/small_vector.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace onestop::core {

namespace {

// The nodes of one branch of a split: reachable from its first node
// without passing the split's join.
std::vector<bool> branch_nodes(const CompiledFlow& cf, std::uint32_t first, std::uint32_t join) {
  std::vector<bool> seen(cf.nodes.size(), false);
  if (first == join) return seen;
  std::vector<std::uint32_t> stack{first};
  seen[first] = true;
  while (!stack.empty()) {
    const std::uint32_t v = stack.back();
    stack.pop_back();
    const CompiledNode& n = cf.nodes[v];
    for (std::uint32_t e = n.first_edge; e < n.first_edge + n.edge_count; ++e) {
      const std::uint32_t w = cf.edges[e].to;
      if (w == join || seen[w] || cf.edges[e].def->loop) continue;
      seen[w] = true;
      stack.push_back(w);
    }
  }
  return seen;
}

// Room for `n` more elements, growing by a quarter rather than doubling:
// every action works on a fresh copy of the state (whose lists are exactly
// full), and what it leaves is what the store keeps.
template <typename V>
void make_room(V& v, std::size_t n) {
  if (v.size() + n > v.capacity()) v.reserve(v.size() + n + v.size() / 4);
}

// {"key":seconds}, the payload of every task creation: without fmt's
// machinery.
std::string instant_json(std::string_view key, Instant at) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, at.time_since_epoch().count()).ptr;
  std::string out;
  out.reserve(key.size() + static_cast<std::size_t>(end - digits) + 5);
  out += "{\"";
  out += key;
  out += "\":";
  out.append(digits, end);
  out += '}';
  return out;
}

[[noreturn]] void refuse(ErrorCode code, const std::string& message) { throw Error(code, message); }

bool contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool intersects(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return std::any_of(a.begin(), a.end(), [&](const std::string& x) { return contains(b, x); });
}

// What guards read: the application, the applicant, the case, and the
// decisions of the step being left.
class GuardContext final : public ExprContext {
 public:
  GuardContext(const CaseSnapshot& s, Instant now, Decision decision, std::uint32_t approvals,
               std::uint32_t rejections)
      : s_(s), now_(now), decision_(decision), approvals_(approvals), rejections_(rejections) {}

  Value field(std::string_view path) const override {
    if (path == "outcome") {
      if (decision_ == Decision::none) return Value();
      return Value(decision_ == Decision::rejected ? "rejected" : "approved");
    }
    if (path == "approved") return Value(decision_ == Decision::approved || decision_ == Decision::deemed_approved);
    if (path == "rejected") return Value(decision_ == Decision::rejected);
    if (path == "all_approved") {
      return Value(rejections_ == 0 &&
                   (approvals_ > 0 || decision_ == Decision::approved || decision_ == Decision::deemed_approved));
    }
    if (path == "any_rejected") return Value(rejections_ > 0 || decision_ == Decision::rejected);
    if (path == "approvals") return Value(static_cast<double>(approvals_));
    if (path == "rejections") return Value(static_cast<double>(rejections_));
    if (path == "case.id") return Value(static_cast<double>(s_.id));
    if (path == "case.target") return Value(*s_.target);
    return application_field(path, s_.form, s_.applicant, now_, s_.rules >= 2);
  }

  bool has_material(std::string_view id) const override {
    return std::any_of(s_.materials->begin(), s_.materials->end(),
                       [&](const OfferedMaterial& m) { return m.id == id; });
  }

 private:
  const CaseSnapshot& s_;
  Instant now_;
  Decision decision_;
  std::uint32_t approvals_;
  std::uint32_t rejections_;
};

Decision decision_of(Outcome o) {
  switch (o) {
    case Outcome::approved:
    case Outcome::completed: return Decision::approved;
    default: return Decision::rejected;
  }
}

}  // namespace

Machine::Machine(const CompiledCatalog& catalog, CaseSnapshot& state, Instant now, std::string actor, bool hash)
    : catalog_(catalog), state_(state), now_(now), actor_(std::move(actor)), events_(event_buffer()), hash_(hash) {
  if (hash && state.chain_pending) {
    throw Error(ErrorCode::internal, fmt::format("case {}: its history's chain end is not known: it cannot be hashed on", state.id));
  }
}

Machine::~Machine() { recycle_events(events_); }

void Machine::emit(EventKind kind, TaskId task, std::string node, std::string from, std::string to,
                   std::string payload) {
  Event e;
  e.case_id = state_.id;
  e.seq = ++state_.seq;
  e.at = now_;
  e.actor = actor_;
  e.kind = kind;
  e.task = task;
  e.node = std::move(node);
  e.from = std::move(from);
  e.to = std::move(to);
  e.payload = std::move(payload);
  if (hash_) {
    e.prev_hash = state_.last_hash;
    e.hash = hash_event(e, e.prev_hash);
    state_.last_hash = e.hash;
  } else {
    state_.chain_pending = true;  // the store derives the chain (Store::derives_chain)
  }
  events_.push_back(std::move(e));
}

// ---- submission ----

void Machine::submit(Submission submission, bool draft) {
  std::string payload = encode_submission(submission, state_.is_theme, state_.target_version);
  // The application moves into the state: a theme's materials are dozens.
  // The catalog's text of the target's code, when it has it: not one per
  // case (the states of a catalog's cases refer to it anyway: their frames).
  if (const std::string* code = catalog_.target_text(submission.target)) {
    state_.target = Shared<std::string>::borrowed(*code);
  } else {
    state_.target = std::move(submission.target);
  }
  state_.applicant = std::move(submission.applicant);
  state_.form = std::move(submission.form);
  state_.materials = std::move(submission.materials);
  state_.submitted = now_;
  state_.version = 1;
  if (state_.rules == 0) state_.rules = current_rules;  // replay set the history's
  bool record = false;
  const CompiledFlow* root = draft ? nullptr : root_flow(record);
  if (root && record) {
    // The flow version the case runs on, for replay (a later version may
    // sit beside it by then): inside the payload's object.
    payload.back() = ',';
    payload += root->pin;
  }
  if (state_.rules >= 2) {  // and the rules it runs under (none: the first)
    payload.back() = ',';
    payload += "\"rules\":";
    payload += std::to_string(state_.rules);
    payload += '}';
  }
  emit(EventKind::submitted, 0, {}, {}, draft ? "draft" : "running", std::move(payload));
  if (draft) {
    state_.status = CaseStatus::draft;
    emit(EventKind::drafted, 0, {}, "running", "draft");
    return;
  }
  start_flow(root);
}

// `{"flow":ID,"flow_version":N}`: the payload of an event that starts a frame on `f`.
std::string Machine::flow_pin(const CompiledFlow& f) {
  std::string out;
  out.reserve(f.pin.size() + 1);
  out += '{';
  out += f.pin;
  return out;
}

// The flow a frame starts: the one the history recorded, when replaying
// one that recorded it (FlowPins), else `resolved` (the catalog's choice).
// `same_id`: the definitions fix the flow's id there (a root, on its item
// or theme version; a subflow naming a flow), so the recorded one must
// have it; a subflow running an item takes the item's newest version,
// which may run another flow than the version the case ran.
// `record`: whether the event that starts the frame names it (always, but
// in the replay of a history written before events did, which must give
// back the same events).
const CompiledFlow* Machine::pinned(const CompiledFlow* resolved, bool& record, bool same_id) {
  record = true;
  if (pins_ == nullptr || pins_->next >= pins_->flows.size()) return resolved;
  const auto& [id, version] = pins_->flows[pins_->next++];
  if (version == 0) {  // recorded before pins were
    record = false;
    return resolved;
  }
  const CompiledFlow* f = catalog_.flow(id, version);
  if (f == nullptr) {
    refuse(ErrorCode::not_found,
           fmt::format("case {}: its history ran flow '{}' version {}, which these definitions lack", state_.id, id, version));
  }
  if (same_id && resolved != nullptr && resolved->def->id != id) {
    refuse(ErrorCode::invalid_input,
           fmt::format("case {}: its history started flow '{}' where the definitions start flow '{}'", state_.id, id,
                       resolved->def->id));
  }
  return f;
}

const CompiledFlow* Machine::root_flow(bool& record) {
  const CompiledFlow* root = nullptr;
  const Theme* t = state_.is_theme ? catalog_.catalog().find_theme(*state_.target, state_.target_version) : nullptr;
  const Item* it = state_.is_theme ? nullptr : catalog_.catalog().find_item(*state_.target, state_.target_version);
  if (t == nullptr && it == nullptr) {
    // Checked before any recorded flow is taken: a store refuses a catalog
    // lacking a version its cases run on (Store::bind), so replay (import)
    // refuses such a case as well.
    refuse(ErrorCode::not_found, fmt::format("case {}: it runs {} {} version {}, which the definitions lack", state_.id,
                                             state_.is_theme ? "theme" : "item", *state_.target, state_.target_version));
  }
  root = t ? catalog_.newest(t->flow) : catalog_.flow_of(*it);
  root = pinned(root, record, true);
  if (root == nullptr || root->start == npos) {
    refuse(ErrorCode::invalid_input, fmt::format("case {}: no runnable flow for '{}'", state_.id, *state_.target));
  }
  return root;
}

void Machine::start_flow(const CompiledFlow* root) {
  state_.status = CaseStatus::running;
  state_.frames.push_back(Frame{root, -1, 0, false, Outcome::completed});
  // The overall limits: the theme's or item's, else the flow's.
  TimeLimits limits = root->def->time_limit;
  if (state_.is_theme) {
    if (const Theme* t = catalog_.catalog().find_theme(*state_.target, state_.target_version)) {
      if (t->time_limit.promised || t->time_limit.statutory) limits = t->time_limit;
      // Starting a theme emits two events or so per item: room for them at once.
      events_.reserve(events_.size() + 4 + 2 * t->items.size());
    }
  } else if (const Item* it = catalog_.catalog().find_item(*state_.target, state_.target_version)) {
    if (it->time_limit.promised || it->time_limit.statutory) limits = it->time_limit;
  }
  if (limits.promised) state_.promised_clock = root_calendar().start_clock(now_, *limits.promised);
  if (limits.statutory) state_.statutory_clock = root_calendar().start_clock(now_, *limits.statutory);
  spawn(0, root->start, npos);
}

// ---- tokens ----

Token* Machine::find_token(std::uint32_t id) {
  for (auto& t : state_.tokens) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

std::size_t Machine::token_index(std::uint32_t id) const {
  for (std::size_t i = 0; i < state_.tokens.size(); ++i) {
    if (state_.tokens[i].id == id) return i;
  }
  return state_.tokens.size();
}

std::uint32_t Machine::spawn(std::uint16_t frame, std::uint32_t node, std::uint32_t in_edge, Decision decision) {
  Token t;
  t.id = state_.next_token++;
  t.frame = frame;
  t.node = node;
  t.in_edge = in_edge;
  t.decision = decision;
  make_room(state_.tokens, 1);
  state_.tokens.push_back(t);
  enter(t.id);
  return t.id;
}

// A step's clock, started now; stopped at once while the case's clocks
// are (a correction or special procedure under way: a timer or another
// branch may start a step meanwhile), so that resuming adds the pause to it
// as to every other clock.
LimitClock Machine::step_clock(const CompiledFlow& cf, const TimeLimit& limit) const {
  const WorkingCalendar& cal = catalog_.calendar_of(cf);
  LimitClock clock = cal.start_clock(now_, limit);
  if (state_.paused && state_.rules >= 2) cal.pause(clock, now_);
  return clock;
}

TaskRecord& Machine::create_task(Token& token) {
  TaskRecord task;
  task.id = state_.next_task++;
  task.frame = token.frame;
  task.node = token.node;
  task.created = now_;
  const CompiledFlow& cf = flow_of(token.frame);
  const Node& def = *cf.nodes[token.node].def;
  if (def.time_limit) {
    token.clock = step_clock(cf, *def.time_limit);
    task.due = token.clock->due;
  }
  token.task = task.id;
  TaskRecord& created = state_.tasks.push_back(std::move(task));
  emit(EventKind::task_created, created.id, def.id, {}, "open",
       created.due ? instant_json("due", *created.due) : std::string());
  return created;
}

void Machine::enter(std::uint32_t token_id) {
  if (++depth_ > 100000) refuse(ErrorCode::invalid_state, fmt::format("case {}: the flow does not settle", state_.id));
  Token* token = find_token(token_id);
  const std::uint16_t frame = token->frame;
  const CompiledFlow& cf = flow_of(frame);
  const CompiledNode& node = cf.nodes[token->node];
  const Node& def = *node.def;
  switch (def.kind) {
    case NodeKind::start:
      leave(token_id, {});
      break;
    case NodeKind::task:
    case NodeKind::countersign:
      token->wait = Wait::task;
      create_task(*token);
      break;
    case NodeKind::automatic:
      token->wait = Wait::handler;
      create_task(*token);
      break;
    case NodeKind::timer: {
      token->wait = Wait::timer;
      token->due = def.wait ? catalog_.calendar_of(cf).due(now_, *def.wait) : now_;
      break;
    }
    case NodeKind::subflow: {
      bool record = true;
      const CompiledFlow* sub = pinned(node.subflow, record, node.subflow_item == nullptr);
      if (sub == nullptr || sub->start == npos) {
        fail(fmt::format("subflow '{}' has no runnable flow", def.id));
        break;
      }
      token->wait = Wait::subflow;
      if (def.time_limit) token->clock = step_clock(cf, *def.time_limit);
      const auto child = static_cast<std::uint16_t>(state_.frames.size());
      token->child = child;
      state_.frames.push_back(Frame{sub, frame, token_id, false, Outcome::completed});
      emit(EventKind::subflow_started, 0, def.id, {}, node.subflow_item ? node.subflow_item->code : sub->def->id,
           record ? flow_pin(*sub) : std::string());
      spawn(child, sub->start, npos);
      break;
    }
    case NodeKind::parallel:
    case NodeKind::inclusive:
    case NodeKind::exclusive:
    case NodeKind::join:
    case NodeKind::end:
      leave(token_id, {});
      break;
  }
  --depth_;
}

// Moves a token out of its node: gateways and decisions choose the edges.
void Machine::leave(std::uint32_t token_id, const Outcomes& outcomes) {
  const std::size_t idx = token_index(token_id);
  const Token token = state_.tokens[idx];
  const std::uint16_t frame = token.frame;
  const CompiledFlow& cf = flow_of(frame);
  const CompiledNode& node = cf.nodes[token.node];
  const Node& def = *node.def;

  if (def.kind == NodeKind::end) {
    state_.tokens.erase(state_.tokens.begin() + static_cast<std::ptrdiff_t>(idx));
    finish_frame(frame, def.outcome);
    return;
  }

  Outcomes used = outcomes;
  // Cases that run under the first rules keep them (CaseSnapshot::rules).
  const bool first_rules = state_.rules < 2;
  if (def.kind == NodeKind::join) {
    // Record the arrival; continue only when every activated branch is in.
    // A token that waits as Wait::join is a retry of a join that fired but
    // whose choice of edge failed (or one fired by a split entered again
    // with nothing left to run): its wait, kept until a choice is made,
    // holds the branches' counts, and nothing arrives again.
    auto it = find_join(frame, token.node);
    const bool refire = token.wait == Wait::join && it != state_.joins.end();
    if (it == state_.joins.end()) {
      JoinWait j;
      j.frame = frame;
      j.node = token.node;
      for (const auto& e : cf.edges) {
        if (e.to == token.node && !e.def->loop) j.expected.push_back(static_cast<std::uint32_t>(&e - cf.edges.data()));
      }
      state_.joins.push_back(std::move(j));
      it = state_.joins.end() - 1;
    }
    if (!refire) {
      it->arrived.push_back(token.in_edge);
      // The decision of the step the branch last left counts at its own join.
      if (token.decision == Decision::rejected) ++it->rejections;
      if (token.decision == Decision::approved || token.decision == Decision::deemed_approved) ++it->approvals;
    }
    state_.tokens.erase(state_.tokens.begin() + static_cast<std::ptrdiff_t>(idx));
    if (it->arrived.size() < it->expected.size()) return;
    used.approvals = it->approvals;
    used.rejections = it->rejections;
    used.decision = it->rejections > 0 ? Decision::rejected : Decision::approved;
    if (first_rules) state_.joins.erase(it);  // else once its choice is made
  } else {
    state_.tokens.erase(state_.tokens.begin() + static_cast<std::ptrdiff_t>(idx));
  }

  const std::uint32_t first = node.first_edge;
  const std::uint32_t count = node.edge_count;
  if (count == 0) {
    fail(fmt::format("node '{}' has no outgoing edge", def.id));
    return;
  }

  const GuardContext ctx(state_, now_, used.decision, used.approvals, used.rejections);
  auto stuck = [&] {
    Token t = token;
    t.wait = def.kind == NodeKind::join && !first_rules ? Wait::join : Wait::none;
    t.task = 0;
    t.decision = used.decision;
    return t;
  };
  boost::container::small_vector<std::uint32_t, 8> chosen;
  const bool split = def.kind == NodeKind::parallel || def.kind == NodeKind::inclusive;
  if (def.kind == NodeKind::parallel) {
    for (std::uint32_t e = first; e < first + count; ++e) chosen.push_back(e);
  } else if (count == 1 && !cf.edges[first].def->guard.valid()) {
    chosen.push_back(first);
  } else {
    std::uint32_t fallback = npos;
    try {
      for (std::uint32_t e = first; e < first + count; ++e) {
        const Edge& edge = *cf.edges[e].def;
        if (edge.is_default) {
          fallback = e;
          continue;
        }
        if (!edge.guard.valid()) {
          if (fallback == npos) fallback = e;
          continue;
        }
        if (edge.guard.test(ctx)) {
          chosen.push_back(e);
          if (def.kind != NodeKind::inclusive) break;
        }
      }
    } catch (const Error& err) {
      // Put the token back, stuck, so a retry re-evaluates the choice.
      state_.tokens.insert(state_.tokens.begin() + static_cast<std::ptrdiff_t>(std::min(idx, state_.tokens.size())), stuck());
      fail(fmt::format("guard after '{}' failed: {}", def.id, err.what()));
      return;
    }
    if (chosen.empty() && fallback != npos) chosen.push_back(fallback);
    if (chosen.empty()) {
      state_.tokens.insert(state_.tokens.begin() + static_cast<std::ptrdiff_t>(std::min(idx, state_.tokens.size())), stuck());
      fail(fmt::format("no guard after '{}' holds and there is no 'otherwise' edge", def.id));
      return;
    }
  }
  if (def.kind == NodeKind::join && !first_rules) {  // the join has fired and chosen: its wait is done
    state_.joins.erase(find_join(frame, token.node));
  }

  if (split && node.join != npos) {
    auto it = find_join(frame, node.join);
    if (it != state_.joins.end() && first_rules) {
      // Re-entered after a return that kept the other branches (the first
      // rules): start only the chosen branches that neither still run nor
      // have already arrived.
      boost::container::small_vector<std::uint32_t, 8> rerun;
      for (std::uint32_t e : chosen) {
        const std::vector<bool> branch = branch_nodes(cf, cf.edges[e].to, node.join);
        const bool running = std::any_of(state_.tokens.begin(), state_.tokens.end(), [&](const Token& t) {
          return t.frame == frame && branch[t.node];
        });
        const bool arrived = std::any_of(it->arrived.begin(), it->arrived.end(), [&](std::uint32_t in) {
          return in != npos && branch[cf.edges[in].from];
        });
        if (!running && !arrived) rerun.push_back(e);
      }
      chosen = std::move(rerun);
    } else if (it != state_.joins.end()) {
      // Re-entered after a return that kept the other branches: a branch
      // that has arrived stays arrived; one that runs whole runs on; one
      // that runs in part (a return from inside a nested section left a
      // nested join waiting for work nobody does) runs again from its
      // first node, its nested joins keeping what arrived; one that does
      // not run starts again if the split chooses it now (an inclusive
      // split's choice may differ from the first time: the form changed on
      // resubmission). The join then waits for what has arrived, what runs
      // and what starts now, and fires at once when that is all in.
      boost::container::small_vector<std::uint32_t, 8> rerun;
      std::size_t live = 0;
      for (std::uint32_t e = first; e < first + count; ++e) {
        const std::vector<bool> branch = branch_nodes(cf, cf.edges[e].to, node.join);
        if (arrived_from(*it, cf, branch)) continue;
        if (!runs_in(frame, branch)) {
          if (std::find(chosen.begin(), chosen.end(), e) != chosen.end()) rerun.push_back(e);
        } else if (misses_work(frame, branch)) {
          rerun.push_back(e);
        } else {
          ++live;
        }
      }
      it->expected.resize(it->arrived.size() + live + rerun.size());
      if (rerun.empty() && live == 0) {
        Token t;
        t.id = state_.next_token++;
        t.frame = frame;
        t.node = node.join;
        t.wait = Wait::join;
        make_room(state_.tokens, 1);
        state_.tokens.push_back(t);
        leave(t.id, {});
        return;
      }
      chosen = std::move(rerun);
    } else {
      // The join waits for the activated branches only.
      JoinWait j;
      j.frame = frame;
      j.node = node.join;
      j.expected.resize(chosen.size());
      j.arrived.reserve(chosen.size());
      state_.joins.push_back(std::move(j));
    }
  }
  // The branches' tokens, without regrowing the list on the way.
  if (chosen.size() > 1) {
    make_room(state_.tokens, chosen.size());
  }
  for (std::uint32_t e : chosen) {
    spawn(frame, cf.edges[e].to, e, used.decision);
    if (state_.status == CaseStatus::finished || state_.frames[frame].done) return;
  }
}

// The wait of join `node` in frame `frame`, or joins.end().
std::vector<JoinWait>::iterator Machine::find_join(std::uint16_t frame, std::uint32_t node) {
  return std::find_if(state_.joins.begin(), state_.joins.end(),
                      [&](const JoinWait& j) { return j.frame == frame && j.node == node; });
}

// Whether a token of frame `frame` stands on a node of `branch`.
bool Machine::runs_in(std::uint16_t frame, const std::vector<bool>& branch) const {
  return std::any_of(state_.tokens.begin(), state_.tokens.end(),
                     [&](const Token& t) { return t.frame == frame && branch[t.node]; });
}

// Whether `wait` has an arrival from `branch`.
bool Machine::arrived_from(const JoinWait& wait, const CompiledFlow& cf, const std::vector<bool>& branch) {
  return std::any_of(wait.arrived.begin(), wait.arrived.end(),
                     [&](std::uint32_t in) { return in != npos && branch[cf.edges[in].from]; });
}

// Whether a join inside `branch` waits for more than what has arrived at it
// and what runs towards it: a nested branch a return left with nobody on it.
bool Machine::misses_work(std::uint16_t frame, const std::vector<bool>& branch) const {
  const CompiledFlow& cf = flow_of(frame);
  for (const JoinWait& w : state_.joins) {
    if (w.frame != frame) continue;
    const std::uint32_t s = cf.nodes[w.node].split;
    if (s == npos || !branch[s]) continue;
    const CompiledNode& split = cf.nodes[s];
    std::size_t coming = w.arrived.size();
    for (std::uint32_t e = split.first_edge; e < split.first_edge + split.edge_count; ++e) {
      const std::vector<bool> sub = branch_nodes(cf, cf.edges[e].to, w.node);
      if (!arrived_from(w, cf, sub) && runs_in(frame, sub)) ++coming;
    }
    if (coming < w.expected.size()) return true;
  }
  return false;
}

void Machine::finish_frame(std::uint16_t frame, Outcome outcome) {
  Frame& f = state_.frames[frame];
  f.done = true;
  f.outcome = outcome;
  cancel_frame_tokens(frame, "the flow ended");
  if (f.parent < 0) {
    finish_case(outcome, "end reached");
    return;
  }
  emit(EventKind::subflow_finished, 0, {}, "running", std::string(to_string(outcome)), std::string(frame_item(state_, frame)));
  Token* parent = find_token(f.parent_token);
  if (parent == nullptr) return;  // cancelled meanwhile
  parent->wait = Wait::none;
  leave(parent->id, Outcomes{decision_of(outcome), 0, 0});
}

void Machine::cancel_token(std::size_t index, std::string_view why) {
  const Token t = state_.tokens[index];
  state_.tokens.erase(state_.tokens.begin() + static_cast<std::ptrdiff_t>(index));
  if (t.task != 0) {
    if (TaskRecord* task = find_task(t.task); task && task->state == TaskState::open) {
      task->state = TaskState::cancelled;
      emit(EventKind::task_cancelled, task->id, node_of(*task).id, "open", "cancelled",
           fmt::format("{{\"reason\":\"{}\"}}", why));
    }
  }
  if (t.wait == Wait::subflow && t.child < state_.frames.size() && !state_.frames[t.child].done) {
    state_.frames[t.child].done = true;
    state_.frames[t.child].outcome = Outcome::terminated;
    cancel_frame_tokens(t.child, why);
  }
}

void Machine::cancel_frame_tokens(std::uint16_t frame, std::string_view why) {
  for (std::size_t i = state_.tokens.size(); i-- > 0;) {
    if (i < state_.tokens.size() && state_.tokens[i].frame == frame) cancel_token(i, why);
  }
  state_.joins.erase(std::remove_if(state_.joins.begin(), state_.joins.end(),
                                    [&](const JoinWait& j) { return j.frame == frame; }),
                     state_.joins.end());
}

template <class F>
void Machine::change_extras(F&& change) {
  if (!state_.extras.held()) return;  // nothing to clear
  change(state_.extras.edit());
  if (state_.extras->empty()) state_.extras.reset();  // a case kept for years keeps no empty record
}

void Machine::finish_case(Outcome outcome, std::string_view why) {
  for (std::size_t i = state_.tokens.size(); i-- > 0;) {
    if (i < state_.tokens.size()) cancel_token(i, why);
  }
  state_.joins.clear();
  // A finished case is kept for years: no room for tokens and joins it
  // will not have (the copy this action made kept the capacity).
  state_.tokens.shrink_to_fit();
  state_.joins.shrink_to_fit();
  for (auto& f : state_.frames) f.done = true;
  const std::string from(to_string(state_.status));
  state_.status = CaseStatus::finished;
  state_.outcome = outcome;
  state_.finished = now_;
  change_extras([](CaseExtras& x) { x.suspended_since.reset(); });
  emit(EventKind::finished, 0, {}, from, std::string(to_string(outcome)));
}

void Machine::fail(std::string message) {
  const std::string from(to_string(state_.status));
  state_.status = CaseStatus::error;
  CaseExtras& x = state_.extras.edit();
  x.error = std::move(message);
  emit(EventKind::step_error, 0, {}, from, "error", fmt::format("{{\"error\":{}}}", quote_json(x.error)));
}

// ---- tasks ----

TaskRecord* Machine::find_task(TaskId id) {
  if (id == 0 || id > state_.tasks.size() || state_.tasks[id - 1].id != id) return nullptr;
  return &state_.tasks.edit(id - 1);
}

TaskRecord& Machine::require_open_task(const Action& a) {
  TaskRecord* task = find_task(a.task);
  if (task == nullptr) refuse(ErrorCode::not_found, fmt::format("case {} has no task {}", state_.id, a.task));
  if (task->state != TaskState::open) {
    refuse(ErrorCode::invalid_state, fmt::format("case {}: task {} ({}) is already {}; {} by {} refused", state_.id,
                                                 task->id, node_of(*task).id,
                                                 task->state == TaskState::completed ? "completed" : "cancelled",
                                                 to_string(a.kind), a.actor.user));
  }
  return *task;
}

bool Machine::is_candidate(const Actor& actor, const TaskRecord& task) const {
  if (actor.kind != Actor::Kind::staff) return false;
  if (!task.assigned_user().empty()) return actor.user == task.assigned_user();
  const Assignees& a = node_of(task).assignees;
  return contains(a.users, actor.user) || contains(node_of(task).signers, actor.user) ||
         contains(task.added_signers(), actor.user) || intersects(a.roles, actor.roles) ||
         intersects(a.departments, actor.departments);
}

std::vector<std::string> Machine::slots_of(const TaskRecord& task) const {
  return countersign_slots(node_of(task), task.added_signers());
}

std::vector<std::string> countersign_slots(const Node& def, const std::vector<std::string>& added_signers) {
  std::vector<std::string> slots;
  if (!def.signers.empty()) {
    for (const auto& u : def.signers) slots.push_back("user:" + u);
  } else {
    for (const auto& u : def.assignees.users) slots.push_back("user:" + u);
    for (const auto& r : def.assignees.roles) slots.push_back("role:" + r);
    for (const auto& d : def.assignees.departments) slots.push_back("department:" + d);
  }
  for (const auto& u : added_signers) slots.push_back("user:" + u);
  return slots;
}

void Machine::complete_task(TaskRecord& task, Decision decision) {
  task.state = TaskState::completed;
  task.decision = decision;
  const Node& def = node_of(task);
  emit(EventKind::task_completed, task.id, def.id, "open", std::string(to_string(decision)));
  // Find the token waiting on this task and move it on.
  for (const auto& t : state_.tokens) {
    if (t.task == task.id) {
      std::uint32_t approvals = 0;
      std::uint32_t rejections = 0;
      for (const auto& s : task.signatures()) (s.decision == Decision::rejected ? rejections : approvals) += 1;
      if (task.signatures().empty()) (decision == Decision::rejected ? rejections : approvals) = 1;
      leave(t.id, Outcomes{decision, approvals, rejections});
      return;
    }
  }
}

void Machine::sign(TaskRecord& task, const Actor& actor, Decision decision) {
  const Node& def = node_of(task);
  const auto slots = slots_of(task);
  // The actor's own place when it has one (added by name, say, while it
  // also holds a listed role: the role's place stays for another holder),
  // else the first unsigned place it may fill.
  std::string slot;
  auto is_signed = [&](const std::string& s) {
    return std::any_of(task.signatures().begin(), task.signatures().end(), [&](const Signature& g) { return g.slot == s; });
  };
  if (const std::string own = "user:" + actor.user; state_.rules >= 2 && contains(slots, own) && !is_signed(own)) slot = own;
  for (const auto& s : slots) {
    if (!slot.empty()) break;
    if (is_signed(s)) continue;
    const auto colon = s.find(':');
    const std::string kind = s.substr(0, colon);
    const std::string who = s.substr(colon + 1);
    const bool fits = (kind == "user" && actor.user == who) || (kind == "role" && contains(actor.roles, who)) ||
                      (kind == "department" && contains(actor.departments, who));
    if (fits) slot = s;
  }
  if (std::any_of(task.signatures().begin(), task.signatures().end(),
                  [&](const Signature& g) { return g.user == actor.user; })) {
    refuse(ErrorCode::conflict, fmt::format("case {}: {} has already signed countersign task {} ({})", state_.id,
                                            actor.user, task.id, def.id));
  }
  if (slot.empty()) {
    refuse(ErrorCode::not_permitted, fmt::format("case {}: {} holds no unsigned place on countersign task {} ({})",
                                                 state_.id, actor.user, task.id, def.id));
  }
  task.extras.edit().signatures.push_back(Signature{actor.user, slot, decision, now_});
  emit(EventKind::signed_, task.id, def.id, {}, std::string(to_string(decision)), fmt::format("{{\"slot\":\"{}\"}}", slot));

  const auto total = static_cast<std::uint32_t>(slots.size());
  std::uint32_t approvals = 0;
  std::uint32_t rejections = 0;
  for (const auto& s : task.signatures()) (s.decision == Decision::rejected ? rejections : approvals) += 1;
  std::uint32_t needed = total;
  if (def.complete_when == CompletionRule::any) needed = 1;
  if (def.complete_when == CompletionRule::quota) {
    needed = def.quota > 0 ? static_cast<std::uint32_t>(def.quota)
                           : static_cast<std::uint32_t>(std::ceil(def.quota_share * total - 1e-9));
    needed = std::clamp<std::uint32_t>(needed, 1, std::max<std::uint32_t>(total, 1));
  }
  if (approvals >= needed) {
    complete_task(task, Decision::approved);
  } else if (rejections > total - needed) {
    complete_task(task, Decision::rejected);
  }
}

bool Machine::decided() const {
  for (const auto& t : state_.tasks) {
    if (t.frame != 0 || t.state != TaskState::completed || t.returned) continue;  // a return decides nothing
    const CompiledFlow& cf = flow_of(0);
    const CompiledNode& n = cf.nodes[t.node];
    for (std::uint32_t e = n.first_edge; e < n.first_edge + n.edge_count; ++e) {
      const Node& to = *cf.nodes[cf.edges[e].to].def;
      if (to.kind == NodeKind::end && (to.outcome == Outcome::approved || to.outcome == Outcome::rejected)) return true;
    }
  }
  return false;
}

void Machine::do_return(TaskRecord& task, const std::string& target) {
  const CompiledFlow& cf = flow_of(task.frame);
  const CompiledNode& node = cf.nodes[task.node];
  const std::uint32_t to = cf.find(target);
  if (to == npos || std::find(node.returns.begin(), node.returns.end(), to) == node.returns.end()) {
    std::string allowed;
    for (auto r : node.returns) allowed += (allowed.empty() ? "" : ", ") + cf.nodes[r].def->id;
    refuse(ErrorCode::invalid_input,
           fmt::format("case {}: task {} ({}) cannot return to '{}'; declared returns: {}", state_.id, task.id,
                       node.def->id, target, allowed.empty() ? "none" : allowed));
  }
  const std::uint16_t frame = task.frame;
  task.state = TaskState::completed;
  task.decision = Decision::rejected;
  task.returned = state_.rules >= 2;  // the first rules counted a return as a decision
  emit(EventKind::returned, task.id, node.def->id, "open", target);
  // The token waiting on this task leaves the step.
  const std::size_t own = [&] {
    for (std::size_t i = 0; i < state_.tokens.size(); ++i) {
      if (state_.tokens[i].task == task.id) return i;
    }
    return state_.tokens.size();
  }();
  if (own < state_.tokens.size()) state_.tokens.erase(state_.tokens.begin() + static_cast<std::ptrdiff_t>(own));
  if (node.return_siblings == ReturnSiblings::cancel) {
    const auto& downstream = cf.downstream_of.at(to);
    for (std::size_t i = state_.tokens.size(); i-- > 0;) {
      if (i < state_.tokens.size() && state_.tokens[i].frame == frame && downstream[state_.tokens[i].node]) {
        cancel_token(i, "returned upstream");
      }
    }
    // Joins whose split is rewound start afresh.
    state_.joins.erase(std::remove_if(state_.joins.begin(), state_.joins.end(),
                                      [&](const JoinWait& j) {
                                        // Joins of other frames index other flows' nodes.
                                        if (j.frame != frame) return false;
                                        const std::uint32_t s = cf.nodes[j.node].split;
                                        return s != npos && downstream[s];
                                      }),
                       state_.joins.end());
  }
  spawn(frame, to, npos);
}

// ---- actions ----

void Machine::act(const Action& a) {
  // A stale action is a conflict whatever has happened since: the host
  // reloads and sees why.
  if (a.expected_version != 0 && a.expected_version != state_.version) {
    refuse(ErrorCode::conflict, fmt::format("case {} is at version {}, not {}: someone acted first; reload and retry",
                                            state_.id, state_.version, a.expected_version));
  }
  // A special procedure past its maximum has ended, whether or not a tick
  // has noticed: the action (an end_special, a correction request) works
  // on clocks that ran again from the maximum.
  end_special_if_past(a.kind);
  if (a.kind == ActionKind::evaluate || a.kind == ActionKind::rectify) {
    evaluate(a);
    ++state_.version;
    return;
  }
  if (state_.status == CaseStatus::finished) {
    refuse(ErrorCode::invalid_state, fmt::format("case {} is finished ({}); {} by {} refused", state_.id,
                                                 to_string(*state_.outcome), to_string(a.kind), a.actor.user));
  }
  const bool staff_task_action = a.kind == ActionKind::accept || a.kind == ActionKind::refuse ||
                                 a.kind == ActionKind::approve || a.kind == ActionKind::reject ||
                                 a.kind == ActionKind::return_to || a.kind == ActionKind::request_correction ||
                                 a.kind == ActionKind::transfer || a.kind == ActionKind::add_signer ||
                                 a.kind == ActionKind::start_special || a.kind == ActionKind::end_special;
  TaskRecord* task = nullptr;
  if (staff_task_action || ((a.kind == ActionKind::urge || a.kind == ActionKind::comment) && a.task != 0)) {
    task = &require_open_task(a);
  }
  if (staff_task_action) {
    if (state_.status != CaseStatus::running) {
      refuse(ErrorCode::invalid_state, fmt::format("case {} is {}, not running; {} on task {} refused", state_.id,
                                                   to_string(state_.status), to_string(a.kind), a.task));
    }
    const Node& def = node_of(*task);
    if (def.kind == NodeKind::automatic) {
      refuse(ErrorCode::invalid_state, fmt::format("case {}: task {} ({}) is an automatic step run by handler '{}'",
                                                   state_.id, task->id, def.id, def.handler));
    }
    if (!is_candidate(a.actor, *task)) {
      refuse(ErrorCode::not_permitted,
             fmt::format("case {}: {} is not a candidate for task {} ({}); {} refused", state_.id,
                         a.actor.user.empty() ? "an anonymous actor" : a.actor.user, task->id, def.id, to_string(a.kind)));
    }
  }

  // Each action records itself once: the payload moves into its event.
  std::string payload = encode_action(a);
  auto record = [&](const std::string& node) {
    emit(EventKind::acted, a.task, node, {}, std::string(to_string(a.kind)), std::move(payload));
  };

  switch (a.kind) {
    case ActionKind::accept:
    case ActionKind::approve:
    case ActionKind::refuse:
    case ActionKind::reject: {
      const bool yes = a.kind == ActionKind::accept || a.kind == ActionKind::approve;
      record(node_of(*task).id);
      if (node_of(*task).kind == NodeKind::countersign) {
        sign(*task, a.actor, yes ? Decision::approved : Decision::rejected);
      } else {
        complete_task(*task, yes ? Decision::approved : Decision::rejected);
      }
      break;
    }
    case ActionKind::return_to:
      record(node_of(*task).id);
      do_return(*task, a.target);
      break;
    case ActionKind::request_correction:
      record(node_of(*task).id);
      state_.status = CaseStatus::waiting_for_applicant;
      state_.extras.edit().suspended_since = now_;
      pause_clocks("correction requested");
      emit(EventKind::correction_requested, task->id, node_of(*task).id, "running", "waiting_for_applicant",
           a.comment.empty() ? std::string() : fmt::format("{{\"comment\":{}}}", quote_json(a.comment)));
      break;
    case ActionKind::resubmit: {
      if (a.actor.kind != Actor::Kind::applicant || a.actor.user != state_.applicant->id) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: only the applicant may resubmit", state_.id));
      }
      if (state_.status != CaseStatus::waiting_for_applicant && state_.status != CaseStatus::draft) {
        refuse(ErrorCode::invalid_state, fmt::format("case {} is {}: nothing to resubmit", state_.id, to_string(state_.status)));
      }
      record({});
      for (const auto& [k, v] : a.form) state_.form.edit()[k] = v;
      if (!a.materials.empty()) merge_materials(state_.materials.edit(), a.materials);
      const bool was_draft = state_.status == CaseStatus::draft;
      bool record = false;
      const CompiledFlow* root = was_draft ? root_flow(record) : nullptr;
      emit(EventKind::resubmitted, 0, {}, std::string(to_string(state_.status)), "running",
           root && record ? flow_pin(*root) : std::string());
      change_extras([](CaseExtras& x) { x.suspended_since.reset(); });
      if (was_draft) {
        start_flow(root);
      } else {
        state_.status = CaseStatus::running;
        if (state_.extras->special_kind.empty()) resume_clocks("correction resubmitted");
      }
      break;
    }
    case ActionKind::withdraw:
      if (a.actor.kind != Actor::Kind::applicant || a.actor.user != state_.applicant->id) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: only the applicant may withdraw it", state_.id));
      }
      if (decided()) {
        refuse(ErrorCode::invalid_state, fmt::format("case {} has been decided; it can no longer be withdrawn", state_.id));
      }
      record({});
      emit(EventKind::withdrawn, 0, {}, std::string(to_string(state_.status)), "withdrawn");
      finish_case(Outcome::withdrawn, "withdrawn by the applicant");
      break;
    case ActionKind::transfer:
      if (a.target.empty()) refuse(ErrorCode::invalid_input, fmt::format("case {}: transfer needs a target user", state_.id));
      // A countersign's places belong to its signers: handed to one user,
      // nobody else could sign, and the step could never complete.
      if (node_of(*task).kind == NodeKind::countersign && state_.rules >= 2) {
        refuse(ErrorCode::invalid_input,
               fmt::format("case {}: task {} ({}) is a countersign: its places cannot be transferred; add a signer "
                           "instead (add_signer)",
                           state_.id, task->id, node_of(*task).id));
      }
      record(node_of(*task).id);
      emit(EventKind::transferred, task->id, node_of(*task).id, task->assigned_user(), a.target);
      task->extras.edit().assigned_user = a.target;
      break;
    case ActionKind::add_signer:
      if (node_of(*task).kind != NodeKind::countersign) {
        refuse(ErrorCode::invalid_input, fmt::format("case {}: task {} ({}) is not a countersign step", state_.id,
                                                     task->id, node_of(*task).id));
      }
      // A user who holds a place by name already would hold two, and may
      // sign only once: an `all` countersign would never complete.
      if (a.target.empty() || (state_.rules >= 2 ? contains(slots_of(*task), "user:" + a.target)
                                                 : contains(task->added_signers(), a.target) ||
                                                       contains(node_of(*task).signers, a.target))) {
        refuse(ErrorCode::invalid_input,
               fmt::format("case {}: '{}' cannot be added as a signer of task {} ({}){}", state_.id, a.target, task->id,
                           node_of(*task).id, a.target.empty() ? ": no user named" : ": it holds a place already"));
      }
      record(node_of(*task).id);
      task->extras.edit().added_signers.push_back(a.target);
      emit(EventKind::signer_added, task->id, node_of(*task).id, {}, a.target);
      break;
    case ActionKind::urge:
      if (a.actor.kind != Actor::Kind::supervisor && a.actor.kind != Actor::Kind::applicant) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: only a supervisor or the applicant may urge", state_.id));
      }
      if (a.actor.kind == Actor::Kind::applicant && a.actor.user != state_.applicant->id) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: {} is not its applicant", state_.id, a.actor.user));
      }
      if (task == nullptr) refuse(ErrorCode::invalid_input, fmt::format("case {}: urge names no task", state_.id));
      record(node_of(*task).id);
      task->urges = static_cast<std::uint16_t>(task->urges + 1);
      emit(EventKind::urged, task->id, node_of(*task).id, {}, std::to_string(task->urges));
      break;
    case ActionKind::comment: {
      const bool allowed = a.actor.kind == Actor::Kind::supervisor ||
                           (a.actor.kind == Actor::Kind::applicant && a.actor.user == state_.applicant->id) ||
                           (task != nullptr && is_candidate(a.actor, *task));
      if (!allowed) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: {} may not comment here", state_.id, a.actor.user));
      }
      if (a.comment.empty()) refuse(ErrorCode::invalid_input, fmt::format("case {}: empty comment", state_.id));
      record(task ? node_of(*task).id : std::string());
      emit(EventKind::commented, task ? task->id : 0, task ? node_of(*task).id : std::string(), {}, {},
           fmt::format("{{\"comment\":{}}}", quote_json(a.comment)));
      break;
    }
    case ActionKind::terminate:
      if (a.actor.kind != Actor::Kind::supervisor) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: only a supervisor may terminate it", state_.id));
      }
      record({});
      emit(EventKind::terminated, 0, {}, std::string(to_string(state_.status)), "terminated");
      finish_case(Outcome::terminated, "terminated by supervision");
      break;
    case ActionKind::evaluate:
    case ActionKind::rectify:
      break;  // handled before the case-state checks
    case ActionKind::start_special: {
      if (!state_.extras->special_kind.empty()) {
        refuse(ErrorCode::invalid_state, fmt::format("case {}: special procedure '{}' is already under way", state_.id,
                                                     state_.extras->special_kind));
      }
      if (a.target.empty() || !a.limit) {
        refuse(ErrorCode::invalid_input,
               fmt::format("case {}: a special procedure needs its kind (target) and its maximum (limit)", state_.id));
      }
      record(node_of(*task).id);
      CaseExtras& x = state_.extras.edit();
      x.special_kind = a.target;
      x.special_until = catalog_.calendar_of(flow_of(task->frame)).due(now_, *a.limit);
      emit(EventKind::special_started, task->id, node_of(*task).id, {}, a.target,
           fmt::format("{{\"limit\":\"{}\",\"until\":{}}}", a.limit->to_string(),
                       state_.extras->special_until->time_since_epoch().count()));
      pause_clocks("special procedure " + a.target);
      break;
    }
    case ActionKind::end_special: {
      if (state_.extras->special_kind.empty()) {
        refuse(ErrorCode::invalid_state, fmt::format("case {}: no special procedure is under way", state_.id));
      }
      record(node_of(*task).id);
      // Ended after its maximum (no tick noticed it): the clocks ran again from the maximum.
      std::optional<Instant> from;
      if (state_.rules >= 2 && state_.extras->special_until && *state_.extras->special_until < now_) {
        from = *state_.extras->special_until;
      }
      emit(EventKind::special_ended, task->id, node_of(*task).id, state_.extras->special_kind, "ended");
      change_extras([](CaseExtras& x) { x.end_special(); });
      resume_clocks("special procedure ended", from);
      break;
    }
    case ActionKind::retry: {
      if (a.actor.kind != Actor::Kind::supervisor && a.actor.kind != Actor::Kind::system) {
        refuse(ErrorCode::not_permitted, fmt::format("case {}: only a supervisor or the system may retry", state_.id));
      }
      if (state_.status != CaseStatus::error) {
        refuse(ErrorCode::invalid_state, fmt::format("case {} is {}, not in error: nothing to retry", state_.id,
                                                     to_string(state_.status)));
      }
      record({});
      state_.status = CaseStatus::running;
      change_extras([](CaseExtras& x) { x.error.clear(); });
      emit(EventKind::retried, 0, {}, "error", "running");
      // Failed handlers run again; stuck gateways are re-evaluated.
      for (std::size_t i = 0; i < state_.tasks.size(); ++i) {
        if (state_.tasks[i].failed) state_.tasks.edit(i).failed = false;
      }
      std::vector<std::uint32_t> stuck;
      for (const auto& t : state_.tokens) {
        if (t.wait == Wait::none || t.wait == Wait::join) stuck.push_back(t.id);
      }
      for (auto id : stuck) {
        if (state_.status != CaseStatus::running) break;
        if (const Token* t = find_token(id)) leave(id, Outcomes{t->decision, 0, 0});
      }
      break;
    }
  }
  ++state_.version;
}

// Before an action or handler result: a special procedure past its
// maximum has ended, whether or not a tick has noticed (not for an
// end_special, which ends it itself, nor on a finished case or a draft,
// whose clocks no longer or not yet run).
void Machine::end_special_if_past(std::optional<ActionKind> kind) {
  if (state_.rules < 2 || kind == ActionKind::end_special || !state_.extras->special_until ||
      *state_.extras->special_until > now_ || state_.status == CaseStatus::finished || state_.status == CaseStatus::draft) {
    return;
  }
  end_special_at_maximum();
}

// A special procedure's maximum reached: the clocks run again from the
// maximum (under the first rules: from now), however late the tick or
// action that notices it, so the due instants do not depend on how often
// the host ticks.
void Machine::end_special_at_maximum() {
  const Instant until = *state_.extras->special_until;
  emit(EventKind::special_ended, 0, {}, state_.extras->special_kind, "maximum reached");
  change_extras([](CaseExtras& x) { x.end_special(); });
  if (state_.status != CaseStatus::waiting_for_applicant) {
    resume_clocks("special procedure reached its maximum", state_.rules >= 2 ? std::optional(until) : std::nullopt);
  }
}

// 好差评: one rating per case by its applicant after it ends; a poor one
// opens a follow-up that the department (or supervision) closes.
void Machine::evaluate(const Action& a) {
  if (a.kind == ActionKind::evaluate) {
    if (a.actor.kind != Actor::Kind::applicant || a.actor.user != state_.applicant->id) {
      refuse(ErrorCode::not_permitted, fmt::format("case {}: only its applicant may evaluate it", state_.id));
    }
    if (state_.status != CaseStatus::finished) {
      refuse(ErrorCode::invalid_state, fmt::format("case {} has not ended; it can be evaluated afterwards", state_.id));
    }
    if (state_.extras->evaluation) refuse(ErrorCode::conflict, fmt::format("case {} has already been evaluated", state_.id));
    if (a.rating < 1 || a.rating > 5) {
      refuse(ErrorCode::invalid_input, fmt::format("case {}: rating {} is not 1 (very satisfied) .. 5 (very dissatisfied)",
                                                   state_.id, a.rating));
    }
    emit(EventKind::acted, 0, {}, {}, std::string(to_string(a.kind)), encode_action(a));
    state_.extras.edit().evaluation = Evaluation{a.rating, a.comment, now_};
    emit(EventKind::evaluated, 0, {}, {}, std::to_string(a.rating),
         a.comment.empty() ? std::string() : fmt::format("{{\"comment\":{}}}", quote_json(a.comment)));
    if (state_.extras->evaluation->poor()) {
      const TimeLimit limit = a.limit.value_or(TimeLimit{15, TimeUnit::working_days});
      state_.extras.edit().follow_up = FollowUp{now_, root_calendar().due(now_, limit), std::nullopt, {}};
      emit(EventKind::follow_up_opened, 0, {}, {}, "open",
           fmt::format("{{\"due\":{}}}", state_.extras->follow_up->due.time_since_epoch().count()));
    }
    return;
  }
  // rectify
  if (!state_.extras->follow_up || state_.extras->follow_up->closed) {
    refuse(ErrorCode::invalid_state, fmt::format("case {} has no open follow-up to close", state_.id));
  }
  const std::string& department = [&]() -> const std::string& {
    static const std::string none;
    if (state_.is_theme) {
      const Theme* t = catalog_.catalog().find_theme(*state_.target, state_.target_version);
      return t ? t->lead_department : none;
    }
    const Item* it = catalog_.catalog().find_item(*state_.target, state_.target_version);
    return it ? it->department : none;
  }();
  const bool allowed = a.actor.kind == Actor::Kind::supervisor ||
                       (a.actor.kind == Actor::Kind::staff && contains(a.actor.departments, department));
  if (!allowed) {
    refuse(ErrorCode::not_permitted, fmt::format("case {}: only supervision or the department '{}' may close its follow-up",
                                                 state_.id, department));
  }
  if (a.comment.empty()) refuse(ErrorCode::invalid_input, fmt::format("case {}: say what was done (comment)", state_.id));
  emit(EventKind::acted, 0, {}, {}, std::string(to_string(a.kind)), encode_action(a));
  FollowUp& follow_up = *state_.extras.edit().follow_up;
  follow_up.closed = now_;
  follow_up.outcome = a.comment;
  emit(EventKind::follow_up_closed, 0, {}, "open", "closed", fmt::format("{{\"outcome\":{}}}", quote_json(a.comment)));
}

void Machine::handler_result(TaskId id, const StepResult& result) {
  TaskRecord* task = find_task(id);
  if (task == nullptr || task->state != TaskState::open || node_of(*task).kind != NodeKind::automatic) {
    refuse(ErrorCode::invalid_state, fmt::format("case {}: task {} is not an open automatic step", state_.id, id));
  }
  if (state_.status != CaseStatus::running) {
    refuse(ErrorCode::invalid_state, fmt::format("case {} is {}; handler result dropped", state_.id, to_string(state_.status)));
  }
  end_special_if_past(std::nullopt);
  emit(EventKind::handler_ran, task->id, node_of(*task).id, {}, result.ok ? "ok" : "failed", encode_step_result(result));
  if (!result.ok) {
    task->failed = true;
    const std::string from(to_string(state_.status));
    state_.status = CaseStatus::error;
    state_.extras.edit().error =
        fmt::format("handler '{}' of step '{}' failed: {}", node_of(*task).handler, node_of(*task).id, result.message);
    emit(EventKind::handler_failed, task->id, node_of(*task).id, from, "error");
  } else {
    for (const auto& [k, v] : result.form) state_.form.edit()[k] = v;
    complete_task(*task, result.decision == Decision::none ? Decision::approved : result.decision);
  }
  ++state_.version;
}

std::size_t Machine::fire_timers() {
  std::size_t fired = 0;
  for (int guard = 0; guard < 10000; ++guard) {
    std::optional<Deadline> next;
    for_each_deadline(catalog_, state_, [&](const Deadline& d) {
      if (d.at <= now_ && (!next || d.at < next->at)) next = d;
    });
    if (!next) break;
    const Deadline d = *next;
    if (fired == 0) emit(EventKind::timer_fired, 0, {}, {}, {}, instant_json("at", now_));
    ++fired;
    switch (d.kind) {
      case Deadline::Kind::timer: {
        Token* t = find_token(d.token);
        emit(EventKind::timer_done, 0, flow_of(t->frame).nodes[t->node].def->id, "waiting", "done");
        t->wait = Wait::none;
        leave(d.token, {});
        break;
      }
      case Deadline::Kind::warning:
        warn(d);
        break;
      case Deadline::Kind::timeout:
        time_out(d.token);
        break;
      case Deadline::Kind::follow_up:
        state_.extras.edit().follow_up_warned = true;
        emit(EventKind::warning, 0, {}, {}, "red",
             "{\"rule\":\"follow-up\",\"scope\":\"follow_up\",\"notify\":[\"department_head\",\"supervisor\"]}");
        break;
      case Deadline::Kind::special_end:
        end_special_at_maximum();
        break;
    }
  }
  if (fired > 0) ++state_.version;
  return fired;
}

void Machine::warn(const Deadline& d) {
  state_.warned.emplace_back(d.token, d.rule);
  const WarningRule& rule = catalog_.rules()[d.rule & 0x7FFF];
  std::string node;
  TaskId task = 0;
  std::string scope = d.statutory ? "case_statutory" : "case";
  double used = 0;
  if (d.token != 0) {
    const Token* t = find_token(d.token);
    node = flow_of(t->frame).nodes[t->node].def->id;
    task = t->task;
    scope = "step";
    used = catalog_.calendar_of(flow_of(t->frame)).used_share(*t->clock, now_);
  } else {
    const LimitClock& c = d.statutory ? *state_.statutory_clock : *state_.promised_clock;
    used = root_calendar().used_share(c, now_);
  }
  std::string notify;
  for (const auto& n : rule.notify) notify += (notify.empty() ? "" : ",") + quote_json(n);
  emit(EventKind::warning, task, node, {}, std::string(to_string(rule.level)),
       fmt::format("{{\"rule\":{},\"scope\":\"{}\",\"used\":{:.3f},\"notify\":[{}],\"escalate\":{}}}",
                   quote_json(rule.id), scope, used, notify, quote_json(rule.escalate_to)));
}

void Machine::time_out(std::uint32_t token_id) {
  Token* t = find_token(token_id);
  t->timed_out = true;
  const CompiledFlow& cf = flow_of(t->frame);
  const Node& def = *cf.nodes[t->node].def;
  if (def.on_timeout == TimeoutAction::escalate) {
    emit(EventKind::escalated, t->task, def.id, {}, def.escalate_to);
    return;
  }
  // Deemed consent: the step completes as approved, recorded as deemed.
  emit(EventKind::deemed_consent, t->task, def.id, "open", "deemed_approved");
  if (t->wait == Wait::task || t->wait == Wait::handler) {
    if (TaskRecord* task = find_task(t->task)) complete_task(*task, Decision::deemed_approved);
    return;
  }
  if (t->wait == Wait::subflow) {
    const std::uint16_t child = t->child;
    if (child < state_.frames.size() && !state_.frames[child].done) {
      state_.frames[child].done = true;
      state_.frames[child].outcome = Outcome::approved;
      cancel_frame_tokens(child, "deemed consent of the calling step");
    }
    Token* again = find_token(token_id);
    if (again == nullptr) return;
    again->wait = Wait::none;
    leave(token_id, Outcomes{Decision::deemed_approved, 0, 0});
  }
}

void Machine::pause_clocks(std::string_view why) {
  if (state_.paused) return;
  state_.paused = true;
  const WorkingCalendar& cal = root_calendar();
  if (state_.promised_clock) cal.pause(*state_.promised_clock, now_);
  if (state_.statutory_clock) cal.pause(*state_.statutory_clock, now_);
  for (auto& t : state_.tokens) {
    if (t.clock && !t.clock->paused_at) catalog_.calendar_of(flow_of(t.frame)).pause(*t.clock, now_);
  }
  emit(EventKind::clock_paused, 0, {}, "running", "paused", fmt::format("{{\"reason\":{}}}", quote_json(std::string(why))));
}

void Machine::resume_clocks(std::string_view why, std::optional<Instant> from) {
  if (!state_.paused) return;
  state_.paused = false;
  const Instant at = from ? *from : now_;
  // A clock stopped after `at` (a step started after a special procedure's
  // maximum, before the tick that noticed it) resumes where it stopped: it
  // lost no time.
  auto resume = [&](const WorkingCalendar& cal, LimitClock& clock) { cal.resume(clock, std::max(at, *clock.paused_at)); };
  const WorkingCalendar& cal = root_calendar();
  if (state_.promised_clock && state_.promised_clock->paused_at) resume(cal, *state_.promised_clock);
  if (state_.statutory_clock && state_.statutory_clock->paused_at) resume(cal, *state_.statutory_clock);
  for (auto& t : state_.tokens) {
    if (t.clock && t.clock->paused_at) resume(catalog_.calendar_of(flow_of(t.frame)), *t.clock);
  }
  emit(EventKind::clock_resumed, 0, {}, "paused", "running",
       from ? fmt::format("{{\"reason\":{},\"from\":{}}}", quote_json(std::string(why)), at.time_since_epoch().count())
            : fmt::format("{{\"reason\":{}}}", quote_json(std::string(why))));
}

}  // namespace onestop::core
