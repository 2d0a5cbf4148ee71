#include "core/compiled.hpp"

#include "core/machine.hpp"
#include "graph/check.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <deque>

namespace onestop::core {

namespace {

std::string hex_sha256(const std::string& text) {
  Hash digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return to_hex(digest);
}

std::string limit_text(const std::optional<TimeLimit>& l) {
  return l ? fmt::format("{}:{}", l->amount, static_cast<int>(l->unit)) : std::string("-");
}

}  // namespace

std::string structure_fingerprint(const Flow& flow) {
  // Fields separated by U+001F, lists by U+001D, records by U+001E: ids
  // cannot hold them. Display names and source positions are left out.
  std::string text = fmt::format("flow\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1e", flow.id, flow.version,
                                 limit_text(flow.time_limit.statutory), limit_text(flow.time_limit.promised), flow.calendar);
  std::unordered_map<std::string_view, std::size_t> position;
  for (const auto& n : flow.nodes) {
    position.emplace(n.id, position.size());
    text += fmt::format("node\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1e",
                        n.id, to_string(n.kind), fmt::join(n.assignees.users, "\x1d"), fmt::join(n.assignees.roles, "\x1d"),
                        fmt::join(n.assignees.departments, "\x1d"), limit_text(n.time_limit), static_cast<int>(n.on_timeout),
                        n.escalate_to, static_cast<int>(n.complete_when), n.quota, n.quota_share,
                        fmt::join(n.signers, "\x1d"), n.item, n.flow, n.handler, limit_text(n.wait), static_cast<int>(n.outcome));
  }
  // Edges as the engine orders them: by source node, in definition order
  // within one (guards are tried in that order).
  std::vector<const Edge*> edges;
  for (const auto& e : flow.edges) edges.push_back(&e);
  auto from = [&](const Edge* e) {
    auto it = position.find(e->from);
    return it == position.end() ? position.size() : it->second;
  };
  std::stable_sort(edges.begin(), edges.end(), [&](const Edge* x, const Edge* y) { return from(x) < from(y); });
  for (const Edge* e : edges) {
    text += fmt::format("edge\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1e", e->from, e->to, e->guard.valid() ? e->guard.text() : std::string(),
                        e->is_default ? 1 : 0, e->loop ? 1 : 0);
  }
  for (const auto& r : flow.returns) {
    text += fmt::format("return\x1f{}\x1f{}\x1f{}\x1e", r.from, fmt::join(r.to, "\x1d"), static_cast<int>(r.siblings));
  }
  return hex_sha256(text);
}

std::string rules_fingerprint(const std::vector<WarningRule>& rules) {
  std::string text;
  for (const auto& r : rules) {
    text += fmt::format("rule\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1e", r.id, static_cast<int>(r.scope),
                        r.used_share ? fmt::format("{}", *r.used_share) : std::string("-"), limit_text(r.before_deadline),
                        static_cast<int>(r.level), fmt::join(r.notify, "\x1d"), r.escalate_to);
  }
  return hex_sha256(text);
}

namespace {

MaterialPlan plan_materials(std::vector<const Item*> items) {
  MaterialPlan plan;
  plan.items = std::move(items);
  std::vector<std::vector<MaterialPlan::Listing>> by_id;
  for (const Item* it : plan.items) {
    for (const Material& m : it->materials) {
      std::size_t g = 0;
      while (g < plan.groups.size() && plan.groups[g].id != m.id) ++g;
      if (g == plan.groups.size()) {
        plan.groups.push_back({m.id, 0, 0, false});
        by_id.emplace_back();
      }
      by_id[g].push_back({it, &m});
      plan.groups[g].supplied = plan.groups[g].supplied || m.source != MaterialSource::applicant;
    }
  }
  for (std::size_t g = 0; g < by_id.size(); ++g) {
    plan.groups[g].first = static_cast<std::uint32_t>(plan.listings.size());
    plan.groups[g].count = static_cast<std::uint32_t>(by_id[g].size());
    plan.listings.insert(plan.listings.end(), by_id[g].begin(), by_id[g].end());
  }
  return plan;
}

}  // namespace

CompiledCatalog::CompiledCatalog(std::shared_ptr<const Catalog> catalog)
    : catalog_(std::move(catalog)), serial_([] {
        static std::atomic<std::uint64_t> serials{0};
        return ++serials;
      }()) {
  for (const auto& f : catalog_->flows) {
    auto cf = std::make_unique<CompiledFlow>();
    cf->def = &f;
    by_key_[fmt::format("{}@{}", f.id, f.version)] = cf.get();
    flows_.push_back(std::move(cf));
  }
  for (auto& cf : flows_) compile(*cf);
  for (const auto& it : catalog_->items) targets_.emplace(it.code, &it.code);
  for (const auto& t : catalog_->themes) targets_.emplace(t.id, &t.id);
  for (const auto& it : catalog_->items) plans_.emplace(&it, plan_materials({&it}));
  for (const auto& t : catalog_->themes) {
    std::vector<const Item*> items;
    for (const auto& code : catalog_->theme_items(t)) {
      if (const Item* it = catalog_->find_item(code)) items.push_back(it);
    }
    plans_.emplace(&t, plan_materials(std::move(items)));
  }
  rules_ = catalog_->rules;
  if (rules_.empty()) {
    WarningRule yellow;
    yellow.id = "default-yellow";
    yellow.used_share = 0.8;
    yellow.level = WarningLevel::yellow;
    yellow.notify = {"assignee"};
    WarningRule red;
    red.id = "default-red";
    red.used_share = 1.0;
    red.level = WarningLevel::red;
    red.notify = {"assignee", "department_head"};
    rules_ = {yellow, red};
  }
}

const CompiledFlow* CompiledCatalog::flow(std::string_view id, int version) const {
  auto it = by_key_.find(fmt::format("{}@{}", id, version));
  return it == by_key_.end() ? nullptr : it->second;
}

const CompiledFlow* CompiledCatalog::newest(std::string_view id) const {
  const Flow* f = catalog_->find_flow(id);
  return f ? flow(f->id, f->version) : nullptr;
}

const CompiledFlow* CompiledCatalog::flow_of(const Item& item) const {
  return item.flow_version ? flow(item.flow, *item.flow_version) : newest(item.flow);
}

void CompiledCatalog::compile(CompiledFlow& cf) {
  const Flow& f = *cf.def;
  cf.pin = fmt::format("\"flow\":{},\"flow_version\":{}}}", quote_json(f.id), f.version);
  const std::size_t n = f.nodes.size();
  const std::string& calendar = f.calendar.empty() ? catalog_->default_calendar : f.calendar;
  if (!calendar.empty() && catalog_->find_calendar(calendar)) cf.calendar = WorkingCalendar::resolve(*catalog_, calendar);
  cf.nodes.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    cf.nodes[i].def = &f.nodes[i];
    cf.nodes[i].times_out = f.nodes[i].on_timeout != TimeoutAction::warn;
    cf.index.emplace(f.nodes[i].id, i);
    if (f.nodes[i].kind == NodeKind::start) cf.start = i;
  }
  // Out-edges grouped by source, in definition order (guards are tried in that order).
  std::vector<std::vector<CompiledEdge>> out(n);
  for (const auto& e : f.edges) {
    const std::uint32_t a = cf.find(e.from);
    const std::uint32_t b = cf.find(e.to);
    if (a == npos || b == npos) continue;
    out[a].push_back(CompiledEdge{a, b, &e});
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    cf.nodes[i].first_edge = static_cast<std::uint32_t>(cf.edges.size());
    cf.nodes[i].edge_count = static_cast<std::uint32_t>(out[i].size());
    cf.edges.insert(cf.edges.end(), out[i].begin(), out[i].end());
  }
  const auto ipdom = check::post_dominators(f);
  for (std::uint32_t i = 0; i < n; ++i) {
    const NodeKind k = f.nodes[i].kind;
    if ((k == NodeKind::parallel || k == NodeKind::inclusive) && ipdom[i] < n &&
        f.nodes[ipdom[i]].kind == NodeKind::join) {
      cf.nodes[i].join = static_cast<std::uint32_t>(ipdom[i]);
      cf.nodes[ipdom[i]].split = i;
    }
  }
  for (const auto& r : f.returns) {
    const std::uint32_t from = cf.find(r.from);
    if (from == npos) continue;
    cf.nodes[from].return_siblings = r.siblings;
    for (const auto& t : r.to) {
      const std::uint32_t to = cf.find(t);
      if (to == npos) continue;
      cf.nodes[from].returns.push_back(to);
      if (cf.downstream_of.count(to)) continue;
      // Nodes downstream of a return target: the part of the flow a return
      // to it rewinds.
      std::vector<bool> seen(n, false);
      std::deque<std::uint32_t> queue{to};
      seen[to] = true;
      while (!queue.empty()) {
        const std::uint32_t v = queue.front();
        queue.pop_front();
        for (std::uint32_t e = cf.nodes[v].first_edge; e < cf.nodes[v].first_edge + cf.nodes[v].edge_count; ++e) {
          const auto& edge = cf.edges[e];
          if (edge.def->loop || seen[edge.to]) continue;
          seen[edge.to] = true;
          queue.push_back(edge.to);
        }
      }
      cf.downstream_of.emplace(to, std::move(seen));
    }
  }
  for (auto& node : cf.nodes) {
    const Node& d = *node.def;
    if (d.kind != NodeKind::subflow) continue;
    if (!d.item.empty()) {
      node.subflow_item = catalog_->find_item(d.item);
      if (node.subflow_item) node.subflow = flow_of(*node.subflow_item);
    } else if (!d.flow.empty()) {
      node.subflow = newest(d.flow);
    }
  }
}

const std::string* CompiledCatalog::target_text(std::string_view code) const {
  const auto it = targets_.find(code);
  return it == targets_.end() ? nullptr : it->second;
}

}  // namespace onestop::core
