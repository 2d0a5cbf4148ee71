#pragma once

// Flows compiled for execution: dense node indices, out-edge ranges, the
// join matching each split (its immediate post-dominator, computed once at
// load), declared returns by node. Immutable and shared by every case.

#include <onestop/calendar.hpp>
#include <onestop/model.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace onestop::core {

inline constexpr std::uint32_t npos = 0xFFFFFFFFu;

struct CompiledEdge {
  std::uint32_t from = npos;
  std::uint32_t to = npos;
  const Edge* def = nullptr;
};

struct CompiledFlow;

struct CompiledNode {
  const Node* def = nullptr;
  std::uint32_t first_edge = 0;  // into CompiledFlow::edges
  std::uint32_t edge_count = 0;
  std::uint32_t join = npos;     // parallel/inclusive split: its join
  std::uint32_t split = npos;    // join: its split
  std::vector<std::uint32_t> returns;  // declared return targets
  ReturnSiblings return_siblings = ReturnSiblings::cancel;
  bool times_out = false;  // def->on_timeout is not warn (read at every commit: next_timer)
  const CompiledFlow* subflow = nullptr;  // subflow: the flow it runs
  const Item* subflow_item = nullptr;
};

struct CompiledFlow {
  const Flow* def = nullptr;
  std::vector<CompiledNode> nodes;
  std::vector<CompiledEdge> edges;
  std::uint32_t start = npos;
  std::unordered_map<std::string_view, std::uint32_t> index;
  WorkingCalendar calendar;  // the flow's calendar, or the catalog default
  // Forward reachability between nodes is needed by returns (which
  // branches a return leaves); stored as the set of nodes downstream of
  // each return target, computed lazily at compile time for targets only.
  std::unordered_map<std::uint32_t, std::vector<bool>> downstream_of;
  // `"flow":ID,"flow_version":N}`: how the events that start a frame on
  // this flow name it (Machine::flow_pin), written once.
  std::string pin;

  std::uint32_t find(std::string_view id) const {
    auto it = index.find(id);
    return it == index.end() ? npos : it->second;
  }
};

// A digest (lower-case hex SHA-256) of everything in a flow that case
// states refer to or that replaying a history reads: its nodes in order
// (id, kind, assignees, time limit and what its running out does,
// countersign rule and signers, subflow item or flow, handler, timer,
// outcome), its edges in the engine's order (by source node; guards,
// defaults, loops), its returns, its time limits and calendar id. Display
// names and source positions are left out. States name nodes by position
// and histories replay on the flow: a flow version whose digest changed
// under a store's cases would move them (persistent stores refuse it).
std::string structure_fingerprint(const Flow& flow);
// The same for the catalog's warning rules, which cases name by position.
std::string rules_fingerprint(const std::vector<WarningRule>& rules);

// What pre-review goes through for an application: its items (the item, or
// the theme's items) and each material id they list, once, with every
// item's definition of it (a theme's items share one set of materials).
struct MaterialPlan {
  struct Listing {
    const Item* item = nullptr;
    const Material* material = nullptr;
  };
  struct Group {
    std::string_view id;
    std::uint32_t first = 0;  // into listings
    std::uint32_t count = 0;
    bool supplied = false;  // some item has it from the certificate library or shared data
  };
  std::vector<const Item*> items;
  std::vector<Listing> listings;  // by group, in item order within one
  std::vector<Group> groups;      // in the order of their first listing
};

// Every flow of a catalog, compiled. Built once per catalog.
class CompiledCatalog {
 public:
  explicit CompiledCatalog(std::shared_ptr<const Catalog> catalog);

  const Catalog& catalog() const noexcept { return *catalog_; }
  std::shared_ptr<const Catalog> shared() const noexcept { return catalog_; }
  // nullptr when absent.
  const CompiledFlow* flow(std::string_view id, int version) const;
  const CompiledFlow* newest(std::string_view id) const;
  // The flow an item runs (its pinned version or the newest).
  const CompiledFlow* flow_of(const Item& item) const;
  const WorkingCalendar& calendar_of(const CompiledFlow& flow) const noexcept { return flow.calendar; }
  // The warning rules in force: the catalog's, or yellow at 80 % and red at 100 %.
  const std::vector<WarningRule>& rules() const noexcept { return rules_; }
  // The catalog's own text of an item code or theme id, for cases to refer
  // to rather than each keep a copy; nullptr for any other text.
  const std::string* target_text(std::string_view code) const;
  // The material plan of an item or a theme (any version the catalog holds).
  const MaterialPlan& material_plan(const Item& item) const { return plans_.at(&item); }
  const MaterialPlan& material_plan(const Theme& theme) const { return plans_.at(&theme); }
  // Unique per compiled catalog in this process, never reused: a key for
  // memos of what depends on the catalog.
  std::uint64_t serial() const noexcept { return serial_; }

 private:
  void compile(CompiledFlow& cf);
  std::shared_ptr<const Catalog> catalog_;
  std::vector<WarningRule> rules_;
  std::uint64_t serial_;
  std::vector<std::unique_ptr<CompiledFlow>> flows_;
  std::unordered_map<std::string, const CompiledFlow*> by_key_;  // "id@version"
  std::unordered_map<std::string_view, const std::string*> targets_;  // into catalog_
  std::unordered_map<const void*, MaterialPlan> plans_;  // by Item or Theme
};

}  // namespace onestop::core
