#pragma once

// Persistence behind one interface. Every engine action is one Commit: the
// new case state, the events to append and the indexes to update, applied
// atomically or not at all, guarded by the case version (optimistic
// concurrency). Implementations: open_memory_store() here; SQLite and
// PostgreSQL stores come with their own factories.

#include <onestop/case.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace onestop {

// The engine's full internal state of one case; opaque to hosts and stores.
// Persistent stores keep it as bytes through encode_snapshot/decode_snapshot.
struct CaseSnapshot;

// An open task as stores index it for inbox queries. `node` points into the
// immutable catalog the engine runs on (candidates, name, kind).
struct InboxEntry {
  CaseId case_id = 0;
  TaskId task = 0;
  const Node* node = nullptr;
  std::string item;           // item code of the task's flow
  std::string flow;           // the flow the node belongs to, its version, and the
  int flow_version = 1;       // node's index in it: how persistent stores name `node`
  std::uint32_t node_index = 0;
  std::string assigned_user;  // set after a transfer
  std::vector<std::string> extra_users;  // countersign signers added later
  Instant created{};
  std::optional<Instant> due;
};

// An open task as a commit lists it for the store's inbox index: the facts
// of an InboxEntry, as views into the commit's snapshot and the engine's
// catalog instead of copies (a commit lists every open task of its case,
// and most of them are unchanged since the last one). The views stay valid
// while the Commit lives (Commit::views_owner holds what they show) and
// the engine is open; a store that keeps them longer copies them.
struct OpenTaskView {
  TaskId task = 0;
  const Node* node = nullptr;
  std::string_view item;  // item code of the task's flow
  std::string_view flow;  // the flow the node belongs to, its version, and
  int flow_version = 1;   // the node's index in it
  std::uint32_t node_index = 0;
  std::string_view assigned_user;          // set after a transfer
  std::span<const std::string> extra_users;  // countersign signers added later
  Instant created{};
  std::optional<Instant> due;
};

// What stores may index and list about a case without decoding its state.
// In a Commit, `target` views the state the commit was made from (valid
// while the Commit lives: Commit::views_owner).
struct CaseHeader {
  std::string_view target;  // item code or theme id
  bool is_theme = false;
  int target_version = 1;  // the definition version the case runs on
  CaseStatus status = CaseStatus::running;
  Instant submitted{};
  std::optional<Instant> finished;
};

// One atomic unit of change.
struct Commit {
  CaseId case_id = 0;
  std::uint64_t expected_version = 0;  // the version the action was applied to; 0 for a new case
  std::uint64_t new_version = 0;
  std::shared_ptr<const CaseSnapshot> snapshot;
  CaseHeader header;
  std::vector<Event> events;           // appended in order
  std::vector<OpenTaskView> open_tasks;  // every open task of the case after the change
  std::optional<Instant> next_timer;   // earliest due timer of the case, if any
  bool finished = false;
  // True when every event's hash is hash_event(event, event.prev_hash), as
  // in the engine's commits (its own actions, and imports it has verified):
  // a store may then leave the hashes out and compute them again when it
  // reads the history (the memory store does). Leave it false for events
  // whose hashes you have not checked; a wrapper that changes a commit's
  // events clears it (else the memory store would give back the hash of
  // the changed event, and the change would go unseen).
  bool chained = false;
  // True when the engine left the events' prev_hash and hash out (zero):
  // it does so only for a store whose derives_chain() is true, while nobody
  // observes its events. Each event then follows the one before it in the
  // case's history, and the store computes the hashes when it reads it.
  bool unhashed = false;
  // Keeps alive what `header.target` and `open_tasks` view (the state they
  // were taken from), even when a wrapper replaces `snapshot` (say, with
  // the state decoded from the bytes it stores). Leave it as it is.
  std::shared_ptr<const void> views_owner;
};

// What an inbox query asks for: tasks any of whose candidates match.
struct InboxQuery {
  std::string user;
  std::vector<std::string> roles;
  std::vector<std::string> departments;
  std::string item;  // only tasks of this item, when set
  std::size_t offset = 0;
  std::size_t limit = 50;
};

// What an engine hands its store when it opens (Store::bind): the catalog it
// runs and the codec that turns case state into bytes and back. Persistent
// stores keep snapshots as these bytes (a Boost.Serialization binary archive
// with class versions, so snapshots of older builds still load).
class CatalogBinding {
 public:
  virtual ~CatalogBinding() = default;
  virtual const Catalog& catalog() const = 0;
  virtual std::string encode(const CaseSnapshot& snapshot) const = 0;
  // Throws Error(storage) when the bytes are not a snapshot, and
  // Error(not_found) when they name a flow version the catalog lacks.
  virtual std::shared_ptr<const CaseSnapshot> decode(std::string_view bytes) const = 0;
  // The node `index` of flow `flow` version `version`; nullptr when absent.
  virtual const Node* node(std::string_view flow, int version, std::uint32_t index) const = 0;
};

// Stores case state, history, inbox and timer indexes.
// Implementations must be safe for concurrent use by several engine threads.
class Store {
 public:
  virtual ~Store() = default;

  // Called by open_engine before any other call. Persistent stores record
  // the catalog's definitions and versions, and refuse (Error(invalid_input))
  // a catalog that lacks a version their running cases still use. A
  // snapshot refers into the catalog of the binding it was made under: a
  // store (or wrapper) that keeps snapshot objects, in a cache say, keeps
  // that binding alive as long as them. Several engines may bind one store.
  virtual void bind(std::shared_ptr<const CatalogBinding> binding) { (void)binding; }
  // A fresh case id, never handed out before.
  virtual CaseId allocate_case_id() = 0;
  // The latest snapshot of a case; nullptr when there is no such case.
  // Snapshots (here, in commits) are reached through shared_ptr ownership
  // only: a store keeps a shared_ptr for as long as it reads a snapshot,
  // never a weak_ptr or a raw pointer past the call. Once nobody owns the
  // state an action replaced, the engine reuses its memory for the next.
  virtual std::shared_ptr<const CaseSnapshot> load(CaseId id) = 0;
  // The snapshot an action is about to change. A store may answer from its
  // own cache without asking whether another process has moved the case on
  // since: the commit finds out (Error(conflict)), and the engine then
  // loads afresh with load() and applies the action once more. The default
  // is load(). (StoreWrapper keeps the default: a wrapper that changes what
  // load() answers stays right without knowing of this call.)
  virtual std::shared_ptr<const CaseSnapshot> load_for_change(CaseId id) { return load(id); }
  // Applies `commit` atomically. Throws Error(conflict) when the stored
  // version is not commit.expected_version (someone else acted first), and
  // Error(storage) when it cannot write; either way nothing changes.
  // Taken by value so that stores may keep the events without copying.
  virtual void commit(Commit commit) = 0;
  // Applies several commits in one transaction (imports, the simulator).
  // The default commits them one by one.
  virtual void commit_batch(std::vector<Commit> commits) {
    for (auto& c : commits) commit(std::move(c));
  }
  // The whole history of a case, in sequence order.
  virtual std::vector<Event> history(CaseId id) = 0;
  // Open tasks matching the query, oldest first.
  virtual std::vector<InboxEntry> inbox(const InboxQuery& query) = 0;
  // Cases with a timer due at or before `now`, earliest first.
  virtual std::vector<CaseId> due_cases(Instant now, std::size_t limit) = 0;
  // Ids of every case, in id order (replay, export).
  virtual std::vector<CaseId> case_ids() = 0;
  // True when the store computes the hash chain of a history itself, from
  // the events alone, whenever it reads one (history()), and so accepts
  // commits whose events carry no hashes (Commit::unhashed): an engine then
  // spares the SHA-256 of every event while nobody observes its events
  // (Engine::subscribe), the simulator's case. The memory store does;
  // stores that write hashes down (SQLite) do not. Asked once, when an
  // engine opens on the store.
  virtual bool derives_chain() { return false; }
};

// A store that keeps everything in memory (tests, simulation, caches). It
// keeps the catalog of every engine opened on it for as long as it lives
// (its cases' states refer into them), so that an engine opened later, on
// the same or a newer catalog, reads and acts on the cases of one closed:
// a store that outlives many engines holds one compiled catalog for each.
std::shared_ptr<Store> open_memory_store();

// A store named by URI, wherever the CLI or a host picks one:
//   memory:          open_memory_store()
//   sqlite:PATH      open_sqlite_store(PATH) with default options (sqlite_store.hpp)
// Throws Error(invalid_input) for an unknown scheme, Error(storage) when the
// store cannot be opened.
std::shared_ptr<Store> open_store(std::string_view uri);

// Decorates another store; override what you need (metrics, fault injection).
// A wrapper that changes a commit's events sets Commit::chained to false.
// A wrapper answers derives_chain() false, so the events it sees carry
// their hashes; one that hands commits on unchanged (events and snapshot)
// may ask its target.
class StoreWrapper : public Store {
 public:
  explicit StoreWrapper(std::shared_ptr<Store> target) : target_(std::move(target)) {}
  void bind(std::shared_ptr<const CatalogBinding> b) override { target_->bind(std::move(b)); }
  CaseId allocate_case_id() override { return target_->allocate_case_id(); }
  std::shared_ptr<const CaseSnapshot> load(CaseId id) override { return target_->load(id); }
  void commit(Commit c) override { target_->commit(std::move(c)); }
  void commit_batch(std::vector<Commit> c) override { target_->commit_batch(std::move(c)); }
  std::vector<Event> history(CaseId id) override { return target_->history(id); }
  std::vector<InboxEntry> inbox(const InboxQuery& q) override { return target_->inbox(q); }
  std::vector<CaseId> due_cases(Instant now, std::size_t limit) override { return target_->due_cases(now, limit); }
  std::vector<CaseId> case_ids() override { return target_->case_ids(); }

 protected:
  Store& target() { return *target_; }

 private:
  std::shared_ptr<Store> target_;
};

}  // namespace onestop
