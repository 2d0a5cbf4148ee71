// Semantic checks: references across the catalog, and the soundness of each
// flow graph (Boost.Graph: reachability, cycles, dominators for split/join
// matching, longest path of step limits).

#include "graph/check.hpp"

#include "definitions/reader.hpp"

#include <onestop/definitions.hpp>
#include <onestop/identity.hpp>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/dominator_tree.hpp>
#include <boost/graph/reverse_graph.hpp>
#include <boost/graph/strong_components.hpp>
#include <boost/graph/topological_sort.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace onestop {

namespace check {
namespace {

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

std::string where_text(const SourceLocation& at) {
  return at.line > 0 ? fmt::format("{}:{}:{}", at.file, at.line, at.column) : at.file;
}

class Checker {
 public:
  Checker(const Catalog& catalog, std::vector<Diagnostic>& out) : c_(catalog), out_(out) {}

  void run(bool graphs) {
    organisation();
    calendars();
    items();
    for (const auto& f : c_.flows) flow(f, graphs);
    themes();
    rules();
    duplicates();
  }

 private:
  void report(Severity s, const SourceLocation& at, std::string code, std::string message,
              std::string hint = {}) {
    out_.push_back(Diagnostic{s, at, std::move(code), std::move(message), std::move(hint)});
  }
  void error(const SourceLocation& at, std::string code, std::string message, std::string hint = {}) {
    report(Severity::error, at, std::move(code), std::move(message), std::move(hint));
  }

  template <typename Range, typename Name>
  static std::vector<std::string_view> names(const Range& range, Name name) {
    std::vector<std::string_view> out;
    for (const auto& x : range) out.push_back(name(x));
    return out;
  }

  std::string hint_for(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::string near = yaml::closest(word, candidates);
    return near.empty() ? std::string() : fmt::format("did you mean '{}'?", near);
  }

  void require_department(const SourceLocation& at, std::string_view id, std::string_view what) {
    if (id.empty() || c_.find_department(id)) return;
    error(at, "unknown-reference", fmt::format("{} '{}' is not a declared department", what, id),
          hint_for(id, names(c_.departments, [](const Department& d) -> std::string_view { return d.id; })));
  }

  void require_role(const SourceLocation& at, std::string_view id, std::string_view what) {
    if (id.empty() || c_.find_role(id)) return;
    error(at, "unknown-reference", fmt::format("{} '{}' is not a declared role", what, id),
          hint_for(id, names(c_.roles, [](const Role& r) -> std::string_view { return r.id; })));
  }

  void require_department_or_role(const SourceLocation& at, std::string_view id, std::string_view what) {
    if (id.empty() || c_.find_department(id) || c_.find_role(id)) return;
    auto candidates = names(c_.departments, [](const Department& d) -> std::string_view { return d.id; });
    for (const auto& r : c_.roles) candidates.push_back(r.id);
    error(at, "unknown-reference", fmt::format("{} '{}' is neither a declared department nor a role", what, id),
          hint_for(id, candidates));
  }

  void require_item(const SourceLocation& at, std::string_view code, std::string_view what) {
    if (code.empty() || c_.find_item(code)) return;
    error(at, "unknown-reference", fmt::format("{} '{}' is not a loaded item", what, code),
          hint_for(code, names(c_.items, [](const Item& i) -> std::string_view { return i.code; })));
  }

  void require_flow(const SourceLocation& at, std::string_view id, std::optional<int> version,
                    std::string_view what) {
    if (id.empty() || c_.find_flow(id, version)) return;
    if (version && c_.find_flow(id)) {
      error(at, "unknown-reference", fmt::format("{} '{}' has no version {}", what, id, *version));
      return;
    }
    error(at, "unknown-reference", fmt::format("{} '{}' is not a loaded flow", what, id),
          hint_for(id, names(c_.flows, [](const Flow& f) -> std::string_view { return f.id; })));
  }

  void limits(const TimeLimits& l, const SourceLocation& at, std::string_view what) {
    if (l.statutory && l.promised &&
        approx_working_days(*l.promised) > approx_working_days(*l.statutory) + 1e-9) {
      error(at, "promised-above-statutory",
            fmt::format("{}: promised limit {} is longer than the statutory limit {}", what,
                        l.promised->to_string(), l.statutory->to_string()));
    }
  }

  void organisation() {
    for (const auto& d : c_.departments) {
      if (!d.parent.empty()) {
        if (d.parent == d.id) {
          error(d.where, "bad-value", fmt::format("department '{}' is its own parent", d.id));
        } else {
          require_department(d.where, d.parent, "parent department");
        }
      }
      if (!d.credit_code.empty()) {
        const IdCheck ok = check_credit_code(d.credit_code, CheckMode::lenient);
        if (!ok.ok) {
          error(d.where, "bad-identity",
                fmt::format("department '{}' credit_code '{}': {}", d.id, d.credit_code, ok.message));
        } else if (ok.warning) {
          report(Severity::warning, d.where, "bad-identity",
                 fmt::format("department '{}' credit_code '{}': {}", d.id, d.credit_code, ok.message));
        }
      }
    }
    for (const auto& r : c_.roles) require_department(r.where, r.department, fmt::format("department of role '{}'", r.id));
  }

  void calendars() {
    if (!c_.default_calendar.empty() && !c_.find_calendar(c_.default_calendar)) {
      error({}, "unknown-reference", fmt::format("default_calendar '{}' is not a loaded calendar", c_.default_calendar));
    }
    for (const auto& cal : c_.calendars) {
      // The rest days in force: the calendar's own, else the nearest
      // ancestor's, else Saturday and Sunday. Resting every weekday leaves
      // only the make-up days to work on: listed along the chain, a nearer
      // level's holiday or make-up day overriding a farther one's on the
      // same date (as WorkingCalendar builds it).
      std::vector<const Calendar*> chain{&cal};  // from the calendar up to its root
      std::set<std::string_view> walked{cal.id};
      for (const Calendar* up = cal.extends.empty() ? nullptr : c_.find_calendar(cal.extends);
           up != nullptr && walked.insert(up->id).second; up = up->extends.empty() ? nullptr : c_.find_calendar(up->extends)) {
        chain.push_back(up);
      }
      const Calendar* ruling = *std::find_if(chain.begin(), chain.end() - 1, [](const Calendar* c) { return c->rest_weekdays.has_value(); });
      std::map<std::chrono::sys_days, bool> working;  // date -> a make-up working day
      for (auto c = chain.rbegin(); c != chain.rend(); ++c) {
        for (auto d : (*c)->holidays) working[d] = false;
        for (auto d : (*c)->workdays) working[d] = true;
      }
      const auto listed = static_cast<std::size_t>(
          std::count_if(working.begin(), working.end(), [](const auto& w) { return w.second; }));
      if (ruling->rest_weekdays &&
          std::set<int>(ruling->rest_weekdays->begin(), ruling->rest_weekdays->end()).size() >= 7) {
        const std::string whose = ruling == &cal ? fmt::format("calendar '{}' rests on every day of the week", cal.id)
                                                 : fmt::format("calendar '{}' inherits from '{}' a rest on every day of the week",
                                                               cal.id, ruling->id);
        if (listed == 0) {
          error(cal.where, "bad-value", fmt::format("{} and lists no make-up working day: no limit could ever run out", whose));
        } else {
          report(Severity::warning, cal.where, "bad-value",
                 fmt::format("{}: only its {} listed make-up day{} are working days, and a limit that runs past them "
                             "cannot be computed", whose, listed, listed == 1 ? "" : "s"));
        }
      }
      if (cal.extends.empty()) continue;
      if (!c_.find_calendar(cal.extends)) {
        error(cal.where, "unknown-reference",
              fmt::format("calendar '{}' extends '{}', which is not a loaded calendar", cal.id, cal.extends),
              hint_for(cal.extends, names(c_.calendars, [](const Calendar& x) -> std::string_view { return x.id; })));
        continue;
      }
      // Follow the chain; a cycle comes back to a calendar already seen.
      std::set<std::string_view> seen{cal.id};
      for (const Calendar* p = c_.find_calendar(cal.extends); p != nullptr;
           p = p->extends.empty() ? nullptr : c_.find_calendar(p->extends)) {
        if (!seen.insert(p->id).second) {
          error(cal.where, "undeclared-cycle", fmt::format("calendar '{}' extends itself through '{}'", cal.id, p->id));
          break;
        }
      }
    }
  }

  void items() {
    for (const auto& it : c_.items) {
      const std::string what = fmt::format("item '{}'", it.code);
      require_department(it.where, it.department, fmt::format("department of {}", what));
      for (const auto& d : it.joint_departments) require_department(it.where, d, fmt::format("joint department of {}", what));
      require_flow(it.where, it.flow, it.flow_version, fmt::format("flow of {}", what));
      limits(it.time_limit, it.where, what);
      if (!it.time_limit.promised && !it.time_limit.statutory) {
        error(it.where, "missing-field", fmt::format("{} has neither a statutory nor a promised limit", what));
      }
      std::unordered_map<std::string_view, const Material*> seen;
      for (const auto& m : it.materials) {
        auto [pos, fresh] = seen.emplace(m.id, &m);
        if (!fresh) {
          error(m.where, "duplicate-id",
                fmt::format("material '{}' appears twice in {} (first at {})", m.id, what, where_text(pos->second->where)));
        }
      }
      for (const auto& m : it.materials) {
        if (!m.required_if.valid()) continue;
        for (const auto& id : m.required_if.materials()) {
          if (!it.find_material(id)) {
            error(m.where, "unknown-reference",
                  fmt::format("required_if of material '{}' uses has({}), but {} has no material '{}'", m.id, id, what, id),
                  hint_for(id, names(it.materials, [](const Material& x) -> std::string_view { return x.id; })));
          }
        }
      }
    }
  }

  void themes() {
    for (const auto& t : c_.themes) {
      const std::string what = fmt::format("theme '{}'", t.id);
      require_department(t.where, t.lead_department, fmt::format("lead department of {}", what));
      require_flow(t.where, t.flow, {}, fmt::format("flow of {}", what));
      limits(t.time_limit, t.where, what);
      const Flow* f = c_.find_flow(t.flow);
      std::set<std::string_view> in_flow;
      if (f) {
        for (const auto& n : f->nodes) {
          if (n.kind == NodeKind::subflow && !n.item.empty()) in_flow.insert(n.item);
        }
      }
      for (const auto& code : t.items) {
        require_item(t.where, code, fmt::format("item of {}", what));
        if (f && c_.find_item(code) && !in_flow.count(code)) {
          error(t.where, "unknown-reference",
                fmt::format("{} lists item '{}' but its flow '{}' has no subflow node for it", what, code, t.flow));
        }
      }
      // An applicant must be one every item accepts (each item checks it at
      // submission): with no kind in common, no application can be made.
      {
        std::vector<const Item*> items;
        for (const auto& code : c_.theme_items(t)) {
          if (const Item* it = c_.find_item(code)) items.push_back(it);
        }
        std::vector<ApplicantKind> common = items.empty() ? std::vector<ApplicantKind>{} : items.front()->applicants;
        for (const Item* it : items) {
          std::erase_if(common, [&](ApplicantKind k) {
            return std::find(it->applicants.begin(), it->applicants.end(), k) == it->applicants.end();
          });
        }
        if (!items.empty() && common.empty()) {
          std::string accepts;
          for (const Item* it : items) {
            std::string kinds;
            for (ApplicantKind k : it->applicants) kinds += fmt::format("{}{}", kinds.empty() ? "" : "/", to_string(k));
            accepts += fmt::format("{}{} {}", accepts.empty() ? "" : ", ", it->code, kinds);
          }
          error(t.where, "bad-value",
                fmt::format("{}: no applicant can apply, its items accept no applicant kind in common ({})", what, accepts),
                "let every item of the theme accept the theme's applicants");
        }
      }
      if (f && t.time_limit.promised) {
        auto it = longest_.find(f);
        if (it != longest_.end() && it->second.days > approx_working_days(*t.time_limit.promised) + 1e-9) {
          report(Severity::warning, t.where, "limit-exceeded",
                 fmt::format("{}: the longest path of step limits ({}) takes {:g} working days, more than the "
                             "promised {}",
                             what, it->second.path, it->second.days, t.time_limit.promised->to_string()));
        }
      }
    }
  }

  void rules() {
    static constexpr std::string_view builtin[] = {"assignee", "department_head", "applicant", "supervisor", "lead_department"};
    for (const auto& r : c_.rules) {
      require_department_or_role(r.where, r.escalate_to, fmt::format("escalation target of rule '{}'", r.id));
      for (const auto& n : r.notify) {
        if (std::find(std::begin(builtin), std::end(builtin), n) != std::end(builtin)) continue;
        require_department_or_role(r.where, n, fmt::format("notify target of rule '{}'", r.id));
      }
    }
  }

  template <typename T, typename Key>
  void duplicates_of(const std::vector<T>& all, std::string_view kind, Key key) {
    std::map<decltype(key(all.front())), const T*> seen;
    for (const auto& x : all) {
      auto [pos, fresh] = seen.emplace(key(x), &x);
      if (!fresh) {
        error(x.where, "duplicate-id",
              fmt::format("{} '{}' is defined twice (first at {})", kind, describe_key(key(x)), where_text(pos->second->where)));
      }
    }
  }
  static std::string describe_key(const std::pair<std::string_view, int>& k) {
    return fmt::format("{}' version '{}", k.first, k.second);
  }
  static std::string describe_key(std::string_view k) { return std::string(k); }

  void duplicates() {
    if (!c_.items.empty())
      duplicates_of(c_.items, "item", [](const Item& i) { return std::pair<std::string_view, int>(i.code, i.version); });
    if (!c_.flows.empty())
      duplicates_of(c_.flows, "flow", [](const Flow& f) { return std::pair<std::string_view, int>(f.id, f.version); });
    if (!c_.themes.empty())
      duplicates_of(c_.themes, "theme", [](const Theme& t) { return std::pair<std::string_view, int>(t.id, t.version); });
    if (!c_.calendars.empty())
      duplicates_of(c_.calendars, "calendar", [](const Calendar& x) { return std::string_view(x.id); });
    if (!c_.departments.empty())
      duplicates_of(c_.departments, "department", [](const Department& x) { return std::string_view(x.id); });
    if (!c_.roles.empty())
      duplicates_of(c_.roles, "role", [](const Role& x) { return std::string_view(x.id); });
    if (!c_.rules.empty())
      duplicates_of(c_.rules, "rule", [](const WarningRule& x) { return std::string_view(x.id); });
  }

  // ---- flows ----

  struct Longest {
    double days = 0;
    std::string path;
  };

  static bool is_split(NodeKind k) { return k == NodeKind::parallel || k == NodeKind::inclusive; }

  // The step limit a node contributes to the overall duration.
  std::optional<TimeLimit> step_limit(const Node& n) const {
    if (n.time_limit) return n.time_limit;
    if (n.kind == NodeKind::timer) return n.wait;
    if (n.kind == NodeKind::subflow) {
      if (const Item* it = n.item.empty() ? nullptr : c_.find_item(n.item)) {
        return it->time_limit.promised ? it->time_limit.promised : it->time_limit.statutory;
      }
      if (const Flow* f = n.flow.empty() ? nullptr : c_.find_flow(n.flow)) return f->time_limit.promised;
    }
    return std::nullopt;
  }

  // Materials a flow's guards may name: those of the items (or theme items) using it.
  std::set<std::string_view> materials_for(const Flow& f) const {
    std::set<std::string_view> out;
    bool used = false;
    auto add_item = [&](const Item& it) {
      for (const auto& m : it.materials) out.insert(m.id);
    };
    for (const auto& it : c_.items) {
      if (it.flow == f.id) {
        used = true;
        add_item(it);
      }
    }
    for (const auto& t : c_.themes) {
      if (t.flow != f.id) continue;
      used = true;
      for (const auto& code : c_.theme_items(t)) {
        if (const Item* it = c_.find_item(code)) add_item(*it);
      }
    }
    if (!used) {
      for (const auto& it : c_.items) add_item(it);
    }
    return out;
  }

  void flow(const Flow& f, bool graphs) {
    const std::string fname = fmt::format("flow '{}'", f.id);
    limits(f.time_limit, f.where, fname);
    if (!f.calendar.empty() && !c_.find_calendar(f.calendar)) {
      error(f.where, "unknown-reference", fmt::format("calendar '{}' of {} is not a loaded calendar", f.calendar, fname));
    }

    const std::size_t n = f.nodes.size();
    std::unordered_map<std::string_view, std::size_t> index;
    index.reserve(n);
    std::vector<std::string_view> node_ids;
    for (std::size_t i = 0; i < n; ++i) {
      const Node& node = f.nodes[i];
      node_ids.push_back(node.id);
      auto [pos, fresh] = index.emplace(node.id, i);
      if (!fresh) {
        error(node.where, "duplicate-id", fmt::format("node '{}' is defined twice in {}", node.id, fname));
      }
      node_references(f, node);
    }

    // Resolve edges.
    struct ResolvedEdge {
      std::size_t from;
      std::size_t to;
      const Edge* edge;
    };
    std::vector<ResolvedEdge> edges;
    edges.reserve(f.edges.size());
    std::set<std::pair<std::size_t, std::size_t>> seen_edges;
    const auto materials = materials_for(f);
    for (const auto& e : f.edges) {
      auto a = index.find(e.from);
      auto b = index.find(e.to);
      for (auto [it, id] : {std::pair{a, &e.from}, std::pair{b, &e.to}}) {
        if (it == index.end()) {
          error(e.where, "unknown-reference", fmt::format("edge {} -> {}: {} has no node '{}'", e.from, e.to, fname, *id),
                hint_for(*id, node_ids));
        }
      }
      for (const auto& m : e.guard.valid() ? e.guard.materials() : std::vector<std::string>{}) {
        if (!materials.count(m)) {
          error(e.where, "unknown-reference",
                fmt::format("guard of edge {} -> {} uses has({}), but no item of {} has material '{}'", e.from, e.to, m, fname, m));
        }
      }
      // The decision names read the step the edge leaves; a gateway, the
      // start or a timer decides nothing, so there they are null (false,
      // 0) on every case, whatever the step before decided.
      if (a != index.end() && e.guard.valid()) {
        const NodeKind k = f.nodes[a->second].kind;
        if (k == NodeKind::exclusive || k == NodeKind::inclusive || k == NodeKind::start || k == NodeKind::timer) {
          for (const auto& name : e.guard.fields()) {
            static const std::set<std::string_view> decision_names = {"outcome",      "approved",     "rejected", "all_approved",
                                                                      "any_rejected", "approvals", "rejections"};
            if (!decision_names.count(name)) continue;
            report(Severity::warning, e.where, "no-decision",
                   fmt::format("guard of edge {} -> {} reads '{}', which names the decision of the node the edge "
                               "leaves, but '{}' is {} {} node and decides nothing: the guard reads no decision on any case",
                               e.from, e.to, name, e.from, k == NodeKind::exclusive || k == NodeKind::inclusive ? "an" : "a",
                               to_string(k)),
                   "put the guard on the edges that leave the deciding step (or the join) itself");
            break;
          }
        }
      }
      if (a == index.end() || b == index.end()) continue;
      if (!seen_edges.insert({a->second, b->second}).second) {
        error(e.where, "duplicate-id", fmt::format("edge {} -> {} is declared twice in {}", e.from, e.to, fname));
        continue;
      }
      edges.push_back({a->second, b->second, &e});
    }

    // Degrees and per-node edge rules.
    std::vector<std::vector<const ResolvedEdge*>> out_edges(n);
    std::vector<std::size_t> in_degree(n, 0);
    std::vector<bool> entered(n, false);  // by any edge, loops included
    for (const auto& e : edges) {
      out_edges[e.from].push_back(&e);
      if (!e.edge->loop) ++in_degree[e.to];
      entered[e.to] = true;
    }
    std::vector<std::size_t> starts;
    std::vector<std::size_t> ends;
    for (std::size_t i = 0; i < n; ++i) {
      const Node& node = f.nodes[i];
      const auto& outs = out_edges[i];
      if (node.kind == NodeKind::start) {
        starts.push_back(i);
        if (entered[i]) error(node.where, "bad-value", fmt::format("start node '{}' has incoming edges", node.id));
      }
      if (node.kind == NodeKind::end) {
        ends.push_back(i);
        if (!outs.empty()) error(node.where, "bad-value", fmt::format("end node '{}' has outgoing edges", node.id));
        continue;
      }
      if (outs.empty()) continue;  // reported as no-path-to-end
      std::size_t defaults = 0;
      std::size_t unguarded = 0;
      std::size_t forward = 0;
      for (const auto* e : outs) {
        defaults += e->edge->is_default ? 1 : 0;
        if (e->edge->loop) continue;
        ++forward;
        if (!e->edge->guard.valid() && !e->edge->is_default) ++unguarded;
      }
      if (node.kind == NodeKind::parallel) {
        for (const auto* e : outs) {
          if (e->edge->guard.valid() || e->edge->is_default) {
            error(e->edge->where, "bad-value",
                  fmt::format("edge {} -> {} leaves parallel split '{}', whose branches all run: it cannot have "
                              "'when' or 'otherwise'",
                              e->edge->from, e->edge->to, node.id),
                  "use an inclusive gateway for conditional branches");
          }
        }
        continue;
      }
      if (defaults > 1) {
        error(node.where, "ambiguous-branch", fmt::format("node '{}' has {} 'otherwise' edges; at most one", node.id, defaults));
      }
      const bool gateway = node.kind == NodeKind::exclusive || node.kind == NodeKind::inclusive;
      if ((gateway || forward > 1) && unguarded > 0) {
        for (const auto* e : outs) {
          if (e->edge->loop || e->edge->guard.valid() || e->edge->is_default) continue;
          error(e->edge->where, "ambiguous-branch",
                fmt::format("edge {} -> {} is one of several leaving '{}' but has no guard", e->edge->from, e->edge->to, node.id),
                gateway ? "give it 'when: ...' or mark it 'otherwise: true'"
                        : "give it 'when: ...' or 'otherwise: true', or branch through a parallel split");
        }
      }
      if ((gateway || forward > 1) && defaults == 0 && unguarded == 0) {
        report(Severity::warning, node.where, "no-default",
               fmt::format("no 'otherwise' edge leaves '{}': when no guard holds the case stops with an error", node.id));
      }
    }
    if (starts.empty()) error(f.where, "no-start", fmt::format("{} has no start node", fname));
    if (starts.size() > 1) {
      for (std::size_t k = 1; k < starts.size(); ++k) {
        error(f.nodes[starts[k]].where, "multiple-starts",
              fmt::format("{} has more than one start node ('{}' and '{}')", fname, f.nodes[starts[0]].id, f.nodes[starts[k]].id));
      }
    }
    if (ends.empty()) error(f.where, "no-end", fmt::format("{} has no end node", fname));

    // Returns: referenced nodes exist, a step with a task returns (the
    // `return` action is taken on a task), and the target is a node a case
    // can go back to (not the start, an end or a join, which would count
    // the return as a branch arriving); checked for upstream below.
    for (const auto& r : f.returns) {
      const auto src = index.find(r.from);
      if (src == index.end()) {
        error(r.where, "unknown-reference", fmt::format("returns: {} has no node '{}'", fname, r.from), hint_for(r.from, node_ids));
      } else if (const NodeKind k = f.nodes[src->second].kind;
                 k != NodeKind::task && k != NodeKind::countersign && k != NodeKind::automatic) {
        error(r.where, "bad-value",
              fmt::format("returns: '{}' is a {} node, which has no task to return from", r.from, to_string(k)),
              "declare returns on task, countersign or automatic steps");
      }
      for (const auto& t : r.to) {
        const auto dst = index.find(t);
        if (dst == index.end()) {
          error(r.where, "unknown-reference", fmt::format("return from '{}': {} has no node '{}'", r.from, fname, t),
                hint_for(t, node_ids));
        } else if (const NodeKind k = f.nodes[dst->second].kind;
                   k == NodeKind::start || k == NodeKind::end || k == NodeKind::join) {
          error(r.where, "bad-value",
                fmt::format("'{}' may return to '{}', a {} node: a case cannot go back to it", r.from, t, to_string(k)),
                "return to a step, or to the split that begins the section");
        }
      }
    }
    for (const auto& e : edges) {
      if (e.edge->loop && f.nodes[e.to].kind == NodeKind::join) {
        error(e.edge->where, "bad-value",
              fmt::format("loop edge {} -> {} enters a join: the join would count it as one of its branches arriving",
                          e.edge->from, e.edge->to),
              "loop back to a step, or to the split that begins the section");
      }
    }

    if (!graphs || n == 0) return;

    // The graph without declared loop edges, plus a sink every end flows into.
    const std::size_t sink = n;
    Graph g(n + 1);
    for (const auto& e : edges) {
      if (!e.edge->loop) boost::add_edge(e.from, e.to, g);
    }
    for (auto e : ends) boost::add_edge(e, sink, g);

    std::vector<bool> from_start(n + 1, false);
    if (starts.size() == 1) from_start = reach(g, starts[0]);
    auto reverse = boost::make_reverse_graph(g);
    std::vector<bool> to_end = reach(reverse, sink);

    // Cycles among non-loop edges.
    std::vector<std::size_t> component(n + 1);
    const std::size_t components = boost::strong_components(
        g, boost::make_iterator_property_map(component.begin(), boost::get(boost::vertex_index, g)));
    bool acyclic = components == n + 1;
    std::vector<std::vector<std::size_t>> members(components);
    for (std::size_t i = 0; i < n; ++i) members[component[i]].push_back(i);
    for (const auto& e : edges) {
      if (!e.edge->loop && e.from == e.to) {
        acyclic = false;
        error(e.edge->where, "undeclared-cycle",
              fmt::format("edge {} -> {} loops on itself; mark it 'loop: true' or declare a return", e.edge->from, e.edge->to));
      }
    }
    for (const auto& m : members) {
      if (m.size() < 2) continue;
      std::string list;
      for (std::size_t k = 0; k < m.size() && k < 8; ++k) list += fmt::format("{}{}", k ? ", " : "", f.nodes[m[k]].id);
      if (m.size() > 8) list += fmt::format(", ... ({} nodes)", m.size());
      error(f.nodes[m.front()].where, "undeclared-cycle",
            fmt::format("{} has a cycle through {} that is not a declared loop or return", fname, list),
            "mark the back edge 'loop: true', or declare the step-back under 'returns'");
    }

    if (starts.size() == 1) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!from_start[i]) {
          error(f.nodes[i].where, "unreachable", fmt::format("node '{}' cannot be reached from start '{}'", f.nodes[i].id, f.nodes[starts[0]].id));
        }
      }
    }
    if (!ends.empty()) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!to_end[i] && (starts.size() != 1 || from_start[i])) {
          error(f.nodes[i].where, "no-path-to-end", fmt::format("no end can be reached from node '{}'", f.nodes[i].id));
        }
      }
    }

    for (const auto& r : f.returns) {
      auto src = index.find(r.from);
      if (src == index.end()) continue;
      std::vector<bool> upstream = reach(reverse, src->second);
      for (const auto& t : r.to) {
        auto dst = index.find(t);
        if (dst == index.end()) continue;
        if (dst->second == src->second || !upstream[dst->second]) {
          error(r.where, "return-not-upstream",
                fmt::format("'{}' may return to '{}', but '{}' is not upstream of it", r.from, t, t));
        }
      }
    }

    if (!acyclic || starts.size() != 1) return;
    // Dominators from the start and post-dominators towards the end, once
    // for both checks.
    const std::vector<std::size_t> idom = dominators(g, starts[0]);
    const std::vector<std::size_t> ipdom = dominators(boost::make_reverse_graph(g), sink);
    split_join(f, idom, ipdom, out_edges);
    back_into_sections(f, idom, ipdom, edges, index);
    longest_path(f, g, sink);
  }

  // A return or loop edge may lead back into a parallel or inclusive
  // section (the nodes strictly between a split and its join) only from
  // inside that section: from outside it, after the join has fired, the
  // target's branch would run alone and the join wait for the others
  // forever. Going back to the split itself runs the section afresh.
  template <typename Edges, typename Index>
  void back_into_sections(const Flow& f, const std::vector<std::size_t>& idom, const std::vector<std::size_t>& ipdom,
                          const Edges& edges, const Index& index) {
    const std::size_t n = f.nodes.size();
    const auto none = static_cast<std::size_t>(-1);
    // The splits whose sections hold node x, innermost first.
    auto sections = [&](std::size_t x) {
      std::vector<std::size_t> out;
      for (std::size_t s = idom[x]; s != none && s < n; s = idom[s]) {
        if (!is_split(f.nodes[s].kind)) continue;
        const std::size_t j = ipdom[s];
        if (j >= n || f.nodes[j].kind != NodeKind::join || idom[j] != s) continue;  // reported by split_join
        for (std::size_t p = ipdom[x]; p != none && p < n; p = ipdom[p]) {
          if (p == j) {
            out.push_back(s);
            break;
          }
        }
      }
      return out;
    };
    auto check = [&](std::size_t from, std::size_t to, const SourceLocation& where, std::string_view what) {
      if (idom[to] == none || idom[from] == none) return;  // unreachable: reported already
      const std::vector<std::size_t> outer = sections(from);
      for (std::size_t s : sections(to)) {
        if (std::find(outer.begin(), outer.end(), s) != outer.end()) continue;
        error(where, "back-into-section",
              fmt::format("{} leads from '{}' into the branches of {} split '{}' (to '{}'), but '{}' is not inside "
                          "that section: its join '{}' has fired or would wait for branches that never run again",
                          what, f.nodes[from].id, to_string(f.nodes[s].kind), f.nodes[s].id, f.nodes[to].id,
                          f.nodes[from].id, f.nodes[ipdom[s]].id),
              fmt::format("go back to the split '{}' to run the whole section again, or to a step before it",
                          f.nodes[s].id));
        return;
      }
    };
    for (const auto& e : edges) {
      if (e.edge->loop) check(e.from, e.to, e.edge->where, fmt::format("loop edge {} -> {}", e.edge->from, e.edge->to));
    }
    for (const auto& r : f.returns) {
      const auto src = index.find(r.from);
      if (src == index.end()) continue;
      for (const auto& t : r.to) {
        const auto dst = index.find(t);
        if (dst == index.end()) continue;
        check(src->second, dst->second, r.where, fmt::format("return '{}' -> '{}'", r.from, t));
      }
    }
  }

  template <typename G>
  static std::vector<bool> reach(const G& g, std::size_t from) {
    std::vector<boost::default_color_type> color(boost::num_vertices(g), boost::white_color);
    boost::breadth_first_search(
        g, boost::vertex(from, g),
        boost::color_map(boost::make_iterator_property_map(color.begin(), boost::get(boost::vertex_index, g))));
    std::vector<bool> out(color.size());
    for (std::size_t i = 0; i < color.size(); ++i) out[i] = color[i] != boost::white_color;
    return out;
  }

  template <typename G>
  static std::vector<std::size_t> dominators(const G& g, std::size_t root) {
    const auto null = boost::graph_traits<G>::null_vertex();
    std::vector<Vertex> idom(boost::num_vertices(g), null);
    boost::lengauer_tarjan_dominator_tree(
        g, boost::vertex(root, g),
        boost::make_iterator_property_map(idom.begin(), boost::get(boost::vertex_index, g)));
    std::vector<std::size_t> out(idom.size(), static_cast<std::size_t>(-1));
    for (std::size_t i = 0; i < idom.size(); ++i) {
      if (idom[i] != null) out[i] = idom[i];
    }
    return out;
  }

  // Block structure: every parallel/inclusive split S is closed by a join J
  // with ipdom(S) = J and idom(J) = S; an exclusive choice never feeds a join.
  template <typename OutEdges>
  void split_join(const Flow& f, const std::vector<std::size_t>& idom, const std::vector<std::size_t>& ipdom,
                  const OutEdges& out_edges) {
    const std::size_t n = f.nodes.size();
    const auto none = static_cast<std::size_t>(-1);
    auto forward_out = [&](std::size_t i) {
      std::size_t k = 0;
      for (const auto* e : out_edges[i]) k += e->edge->loop ? 0 : 1;
      return k;
    };
    auto is_choice = [&](std::size_t i) {
      const NodeKind k = f.nodes[i].kind;
      return k == NodeKind::exclusive || (!is_split(k) && forward_out(i) > 1);
    };
    auto name = [&](std::size_t i) -> std::string_view { return i < n ? std::string_view(f.nodes[i].id) : "the end"; };
    std::set<std::pair<std::size_t, std::size_t>> deadlocks;

    for (std::size_t j = 0; j < n; ++j) {
      if (f.nodes[j].kind != NodeKind::join || idom[j] == none) continue;
      const std::size_t d = idom[j];
      if (is_split(f.nodes[d].kind) && ipdom[d] == j) continue;
      if (is_choice(d)) {
        deadlocks.insert({d, j});
        error(f.nodes[j].where, "deadlock",
              fmt::format("join '{}' waits for the branches of exclusive choice '{}', but only one of them runs: the "
                          "join would wait forever",
                          f.nodes[j].id, f.nodes[d].id),
              "merge exclusive branches in an ordinary step, or split with 'parallel'/'inclusive'");
      } else if (is_split(f.nodes[d].kind)) {
        error(f.nodes[j].where, "unmatched-join",
              fmt::format("join '{}' closes only some branches of split '{}' (its branches meet at '{}')",
                          f.nodes[j].id, f.nodes[d].id, name(ipdom[d])),
              "nest a split for the branches this join closes");
      } else {
        error(f.nodes[j].where, "unmatched-join",
              fmt::format("join '{}' closes no parallel or inclusive split (its branches begin at '{}'): lack of "
                          "synchronisation",
                          f.nodes[j].id, f.nodes[d].id));
      }
    }
    for (std::size_t s = 0; s < n; ++s) {
      if (ipdom[s] == none || idom[s] == none) continue;
      const std::size_t p = ipdom[s];
      const NodeKind k = f.nodes[s].kind;
      const bool join_after = p < n && f.nodes[p].kind == NodeKind::join;
      if (is_split(k)) {
        if (!join_after) {
          error(f.nodes[s].where, "unmatched-split",
                fmt::format("the branches of {} split '{}' do not meet in one join (they first meet at {})",
                            to_string(k), f.nodes[s].id, p < n ? fmt::format("'{}'", name(p)) : std::string("no node")),
                "route every branch into one 'join' node");
        } else if (idom[p] != s) {
          // The join is reached other than through this split: it closes
          // another split's branches as well (two splits, one join), and
          // would fire once as many branches arrive as either split began.
          error(f.nodes[s].where, "unmatched-split",
                fmt::format("the branches of {} split '{}' meet in join '{}', which also closes branches that do not "
                            "begin at '{}'{}: every join closes exactly one split",
                            to_string(k), f.nodes[s].id, name(p), f.nodes[s].id,
                            idom[p] < n && is_split(f.nodes[idom[p]].kind) ? fmt::format(" (those of '{}')", name(idom[p]))
                                                                            : std::string()),
                fmt::format("give '{}' its own join, and let that join flow into '{}'", f.nodes[s].id, name(p)));
        }
      } else if (is_choice(s) && join_after && !deadlocks.count({s, p})) {
        error(f.nodes[s].where, "deadlock",
              fmt::format("exclusive choice '{}' feeds join '{}': only one branch arrives and the join would wait "
                          "forever",
                          f.nodes[s].id, name(p)),
              "merge the exclusive branches in an ordinary step before the join");
      }
    }
  }

  void longest_path(const Flow& f, const Graph& g, std::size_t sink) {
    const std::size_t n = f.nodes.size();
    std::vector<Vertex> order;
    order.reserve(n + 1);
    boost::topological_sort(g, std::back_inserter(order));  // reverse topological order
    std::vector<double> weight(n + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      if (auto l = step_limit(f.nodes[i])) weight[i] = approx_working_days(*l);
    }
    std::vector<double> best(n + 1, 0);
    std::vector<std::size_t> next(n + 1, static_cast<std::size_t>(-1));
    for (Vertex v : order) {  // successors come first
      double tail = 0;
      for (auto [e, eend] = boost::out_edges(v, g); e != eend; ++e) {
        const Vertex w = boost::target(*e, g);
        if (next[v] == static_cast<std::size_t>(-1) || best[w] > tail) {
          tail = best[w];
          next[v] = w;
        }
      }
      best[v] = weight[v] + tail;
    }
    // The start is the only source when the graph is sound; take the max anyway.
    std::size_t head = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (f.nodes[i].kind == NodeKind::start) head = i;
    }
    Longest result;
    result.days = best[head];
    std::size_t shown = 0;
    std::size_t total = 0;
    for (std::size_t v = head; v != static_cast<std::size_t>(-1) && v != sink; v = next[v]) {
      if (weight[v] <= 0) continue;
      ++total;
      if (shown < 8) {
        result.path += fmt::format("{}{} {}", shown ? " -> " : "", f.nodes[v].id, step_limit(f.nodes[v])->to_string());
        ++shown;
      }
    }
    if (total > shown) result.path += fmt::format(" -> ... ({} timed steps)", total);
    if (f.time_limit.promised && result.days > approx_working_days(*f.time_limit.promised) + 1e-9) {
      report(Severity::warning, f.where, "limit-exceeded",
             fmt::format("flow '{}': the longest path of step limits ({}) takes {:g} working days, more than the "
                         "promised {}",
                         f.id, result.path, result.days, f.time_limit.promised->to_string()));
    }
    longest_[&f] = std::move(result);
  }

  // The flow (the version) a subflow node starts, as the runtime picks it
  // (CompiledCatalog): its item's pinned version or newest flow, else the
  // newest version of its `flow`.
  const Flow* callee(const Node& node) const {
    if (!node.item.empty()) {
      const Item* it = c_.find_item(node.item);
      return it ? c_.find_flow(it->flow, it->flow_version) : nullptr;
    }
    return node.flow.empty() ? nullptr : c_.find_flow(node.flow);
  }

  // A subflow that starts its own flow, directly or through the flows it
  // starts, would nest cases without end.
  void recursion(const Flow& f, const Node& node, const std::string& what) {
    const Flow* first = callee(node);
    if (first == nullptr) return;
    if (first == &f) {
      error(node.where, "undeclared-cycle",
            node.flow.empty() ? fmt::format("subflow {} runs item '{}', whose flow is this flow itself", what, node.item)
                              : fmt::format("subflow {} calls its own flow", what));
      return;
    }
    // Breadth first from the callee, remembering how each flow was reached.
    std::map<const Flow*, const Flow*> reached_from{{first, &f}};
    std::deque<const Flow*> queue{first};
    while (!queue.empty()) {
      const Flow* at = queue.front();
      queue.pop_front();
      for (const Node& n : at->nodes) {
        if (n.kind != NodeKind::subflow) continue;
        const Flow* next = callee(n);
        if (next == nullptr) continue;
        if (next == &f) {
          std::vector<const Flow*> path{&f, at};
          for (const Flow* p = at; reached_from[p] != &f;) path.insert(path.begin() + 1, p = reached_from[p]);
          std::string shown;
          for (const Flow* p : path) shown += fmt::format("{} -> ", p->id);
          error(node.where, "undeclared-cycle",
                fmt::format("subflow {} starts flow '{}', which starts this flow again ({}{}): cases would nest "
                            "without end", what, first->id, shown, f.id));
          return;
        }
        if (reached_from.emplace(next, at).second) queue.push_back(next);
      }
    }
  }

  void node_references(const Flow& f, const Node& node) {
    const std::string what = fmt::format("node '{}' of flow '{}'", node.id, f.id);
    for (const auto& r : node.assignees.roles) require_role(node.where, r, fmt::format("role of {}", what));
    for (const auto& d : node.assignees.departments) require_department(node.where, d, fmt::format("department of {}", what));
    require_department_or_role(node.where, node.escalate_to, fmt::format("escalation target of {}", what));
    if (node.kind == NodeKind::subflow) {
      require_item(node.where, node.item, fmt::format("item of subflow {}", what));
      require_flow(node.where, node.flow, {}, fmt::format("flow of subflow {}", what));
      recursion(f, node, what);
    }
    if (node.kind == NodeKind::countersign) {
      // Each place is one signer's: a user or role listed twice would hold
      // two places and sign once, and `all` would never complete.
      auto twice = [&](const std::vector<std::string>& list, std::string_view what_list) {
        for (std::size_t i = 0; i < list.size(); ++i) {
          if (std::find(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(i), list[i]) != list.begin() + static_cast<std::ptrdiff_t>(i)) {
            error(node.where, "duplicate-id",
                  fmt::format("countersign {} lists {} '{}' twice: each place is one signer's, who signs once", what,
                              what_list, list[i]));
            return;
          }
        }
      };
      twice(node.signers, "signer");
      if (node.signers.empty()) {
        twice(node.assignees.users, "user");
        twice(node.assignees.roles, "role");
        twice(node.assignees.departments, "department");
      }
    }
    if (node.kind == NodeKind::countersign && node.complete_when == CompletionRule::quota && node.quota > 0) {
      // The places a case starts with (runtime.md, "Countersign"): the fixed
      // signers, else one per listed user, role and department. A quota
      // above them could be met only by places added later (add_signer),
      // which nothing guarantees.
      const Assignees& a = node.assignees;
      const std::size_t places =
          node.signers.empty() ? a.users.size() + a.roles.size() + a.departments.size() : node.signers.size();
      if (places > 0 && static_cast<std::size_t>(node.quota) > places) {
        error(node.where, "quota-out-of-range",
              node.signers.empty()
                  ? fmt::format("countersign {} needs {} approvals but has only {} places to sign (one per listed "
                                "user, role and department)",
                                what, node.quota, places)
                  : fmt::format("countersign {} needs {} approvals but lists only {} signers", what, node.quota, places),
              "lower the quota, list more signers, or use a share such as \"60%\"");
      }
    }
  }

  const Catalog& c_;
  std::vector<Diagnostic>& out_;
  std::unordered_map<const Flow*, Longest> longest_;
};

}  // namespace

void run(const Catalog& catalog, bool graphs, std::vector<Diagnostic>& diagnostics) {
  Checker(catalog, diagnostics).run(graphs);
}

std::vector<std::size_t> post_dominators(const Flow& flow) {
  const std::size_t n = flow.nodes.size();
  std::unordered_map<std::string_view, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) index.emplace(flow.nodes[i].id, i);
  Graph g(n + 1);
  for (const auto& e : flow.edges) {
    auto a = index.find(e.from);
    auto b = index.find(e.to);
    if (!e.loop && a != index.end() && b != index.end()) boost::add_edge(a->second, b->second, g);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (flow.nodes[i].kind == NodeKind::end) boost::add_edge(i, n, g);
  }
  const auto none = static_cast<std::size_t>(-1);
  std::vector<std::size_t> out(n, none);
  const std::vector<Vertex> null_idom(n + 1, boost::graph_traits<Graph>::null_vertex());
  std::vector<Vertex> idom = null_idom;
  const auto rg = boost::make_reverse_graph(g);
  boost::lengauer_tarjan_dominator_tree(
      rg, boost::vertex(n, rg), boost::make_iterator_property_map(idom.begin(), boost::get(boost::vertex_index, rg)));
  for (std::size_t i = 0; i < n; ++i) {
    if (idom[i] != boost::graph_traits<Graph>::null_vertex() && idom[i] < n) out[i] = idom[i];
  }
  return out;
}

}  // namespace check

std::vector<Diagnostic> check_catalog(const Catalog& catalog) {
  std::vector<Diagnostic> out;
  check::run(catalog, true, out);
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) < std::tie(b.where.file, b.where.line, b.where.column);
  });
  return out;
}

}  // namespace onestop
