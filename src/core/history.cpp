// The hash chain of case histories (SHA-256 through OpenSSL) and the names
// of runtime enums.

#include "core/state.hpp"

#include <onestop/case.hpp>
#include <onestop/engine.hpp>

#include <fmt/format.h>
// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, which costs more per
// short message; it remains supported.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <bit>
#include <cstring>
#include <memory>

namespace onestop {

namespace {

// Little-endian, as the chain has always been written.
char* put_u64(char* out, std::uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(out, &v, 8);  // one store (the byte loop was not merged into one)
  } else {
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  }
  return out + 8;
}

char* put_str(char* out, std::string_view s) {
  out = put_u64(out, s.size());
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

}  // namespace

Hash hash_event(const Event& e, const Hash& prev) {
  // Every field, length-prefixed, so no two different events serialise alike.
  // Written into a stack buffer with plain stores (building the message cost
  // as much as hashing it when appended field by field to a string); the
  // payload, last, is hashed where it is when it does not fit (a
  // submission's: no heap copy of a few KiB per case).
  const std::size_t head = prev.size() + 8 * 10 + e.actor.size() + e.node.size() + e.from.size() + e.to.size();
  char local[512];
  std::unique_ptr<char[]> heap;  // only for fields other than the payload longer than `local`
  char* const buf = head <= sizeof local ? local : (heap = std::make_unique<char[]>(head)).get();
  char* p = buf;
  std::memcpy(p, prev.data(), prev.size());
  p += prev.size();
  p = put_u64(p, e.case_id);
  p = put_u64(p, e.seq);
  p = put_u64(p, static_cast<std::uint64_t>(e.at.time_since_epoch().count()));
  p = put_str(p, e.actor);
  p = put_u64(p, static_cast<std::uint64_t>(e.kind));
  p = put_u64(p, e.task);
  p = put_str(p, e.node);
  p = put_str(p, e.from);
  p = put_str(p, e.to);
  p = put_u64(p, e.payload.size());
  const bool inline_payload = static_cast<std::size_t>(p - buf) + e.payload.size() <= sizeof local && !heap;
  if (inline_payload && !e.payload.empty()) {
    std::memcpy(p, e.payload.data(), e.payload.size());
    p += e.payload.size();
  }
  // The low-level SHA-256 functions: several times faster than the EVP
  // interface for these short messages (no provider dispatch per call).
  Hash out{};
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, buf, static_cast<std::size_t>(p - buf));
  if (!inline_payload) SHA256_Update(&ctx, e.payload.data(), e.payload.size());
  SHA256_Final(out.data(), &ctx);
  return out;
}

namespace core {

namespace {
// Enough for a store's batch of commits (the simulator sends 64 at a time);
// each holds a few KiB at most: a larger one (an imported history's) is
// freed, not kept for an action that will never fill it.
constexpr std::size_t kKeptBuffers = 128;
constexpr std::size_t kKeptRoom = 32;  // events
constexpr std::size_t kFreshRoom = 4;  // 1 KiB: within malloc's per-thread cache; most inputs emit up to four events
thread_local std::vector<std::vector<Event>> spare_buffers;
}  // namespace

std::vector<Event> event_buffer() {
  if (spare_buffers.empty()) {
    std::vector<Event> fresh;
    fresh.reserve(kFreshRoom);
    return fresh;
  }
  std::vector<Event> out = std::move(spare_buffers.back());
  spare_buffers.pop_back();
  return out;
}

void recycle_events(std::vector<Event>& events) noexcept {
  events.clear();
  // Kept: room at least a fresh buffer's (a store's copy of the events,
  // made when observers need the original, is exactly their size).
  if (events.capacity() >= kFreshRoom && events.capacity() <= kKeptRoom && spare_buffers.size() < kKeptBuffers) {
    try {
      spare_buffers.push_back(std::move(events));
    } catch (...) {  // no room to keep it: it is freed below
    }
  }
  std::vector<Event>().swap(events);  // freed when not kept (`= {}` would keep its room)
}

}  // namespace core

std::string to_hex(const Hash& hash) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(64, '0');
  for (std::size_t i = 0; i < hash.size(); ++i) {
    out[2 * i] = digits[hash[i] >> 4];
    out[2 * i + 1] = digits[hash[i] & 0xF];
  }
  return out;
}

HistoryCheck verify_history(const std::vector<Event>& events) {
  Hash prev{};
  std::uint64_t expected = 1;
  for (const auto& e : events) {
    if (e.seq != expected) {
      return {false, e.seq, fmt::format("event {} found where {} was expected: events are missing or reordered", e.seq, expected)};
    }
    if (e.prev_hash != prev) {
      return {false, e.seq, fmt::format("event {} does not follow event {}: the chain is broken", e.seq, e.seq - 1)};
    }
    if (hash_event(e, prev) != e.hash) {
      return {false, e.seq, fmt::format("event {} ({}) has been altered: its hash does not match its content", e.seq, to_string(e.kind))};
    }
    prev = e.hash;
    ++expected;
  }
  return {};
}

std::string_view to_string(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::submitted: return "submitted";
    case EventKind::acted: return "acted";
    case EventKind::handler_ran: return "handler_ran";
    case EventKind::timer_fired: return "timer_fired";
    case EventKind::drafted: return "drafted";
    case EventKind::task_created: return "task_created";
    case EventKind::task_completed: return "task_completed";
    case EventKind::task_cancelled: return "task_cancelled";
    case EventKind::signed_: return "signed";
    case EventKind::transferred: return "transferred";
    case EventKind::signer_added: return "signer_added";
    case EventKind::urged: return "urged";
    case EventKind::commented: return "commented";
    case EventKind::returned: return "returned";
    case EventKind::correction_requested: return "correction_requested";
    case EventKind::resubmitted: return "resubmitted";
    case EventKind::withdrawn: return "withdrawn";
    case EventKind::terminated: return "terminated";
    case EventKind::handler_failed: return "handler_failed";
    case EventKind::retried: return "retried";
    case EventKind::timer_done: return "timer_done";
    case EventKind::subflow_started: return "subflow_started";
    case EventKind::subflow_finished: return "subflow_finished";
    case EventKind::step_error: return "step_error";
    case EventKind::finished: return "finished";
    case EventKind::warning: return "warning";
    case EventKind::escalated: return "escalated";
    case EventKind::deemed_consent: return "deemed_consent";
    case EventKind::clock_paused: return "clock_paused";
    case EventKind::clock_resumed: return "clock_resumed";
    case EventKind::special_started: return "special_started";
    case EventKind::special_ended: return "special_ended";
    case EventKind::evaluated: return "evaluated";
    case EventKind::follow_up_opened: return "follow_up_opened";
    case EventKind::follow_up_closed: return "follow_up_closed";
  }
  return "?";
}

std::string_view to_string(CaseStatus status) noexcept {
  switch (status) {
    case CaseStatus::draft: return "draft";
    case CaseStatus::running: return "running";
    case CaseStatus::waiting_for_applicant: return "waiting_for_applicant";
    case CaseStatus::error: return "error";
    case CaseStatus::finished: return "finished";
  }
  return "?";
}

std::string_view to_string(Decision decision) noexcept {
  switch (decision) {
    case Decision::none: return "none";
    case Decision::approved: return "approved";
    case Decision::rejected: return "rejected";
    case Decision::deemed_approved: return "deemed_approved";
  }
  return "?";
}

std::string_view to_string(ActionKind kind) noexcept {
  switch (kind) {
    case ActionKind::accept: return "accept";
    case ActionKind::refuse: return "refuse";
    case ActionKind::approve: return "approve";
    case ActionKind::reject: return "reject";
    case ActionKind::return_to: return "return_to";
    case ActionKind::request_correction: return "request_correction";
    case ActionKind::resubmit: return "resubmit";
    case ActionKind::withdraw: return "withdraw";
    case ActionKind::transfer: return "transfer";
    case ActionKind::add_signer: return "add_signer";
    case ActionKind::urge: return "urge";
    case ActionKind::comment: return "comment";
    case ActionKind::terminate: return "terminate";
    case ActionKind::retry: return "retry";
    case ActionKind::start_special: return "start_special";
    case ActionKind::end_special: return "end_special";
    case ActionKind::evaluate: return "evaluate";
    case ActionKind::rectify: return "rectify";
  }
  return "?";
}

std::string PreReviewNotice::to_string() const {
  if (deficiencies.empty()) return "all required materials are present";
  std::string out = fmt::format("{} deficienc{} to correct at once:\n", deficiencies.size(),
                                deficiencies.size() == 1 ? "y" : "ies");
  for (const auto& d : deficiencies) out += fmt::format("  - {}\n", d.message);
  return out;
}

std::vector<const Task*> Case::open_tasks() const {
  std::vector<const Task*> out;
  for (const auto& t : tasks) {
    if (t.state == TaskState::open) out.push_back(&t);
  }
  return out;
}

const Task* Case::find_task(TaskId id) const noexcept {
  for (const auto& t : tasks) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace onestop
