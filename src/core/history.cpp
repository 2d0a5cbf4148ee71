// The hash chain of case histories (SHA-256 through OpenSSL) and the names
// of runtime enums.

#include <onestop/case.hpp>
#include <onestop/engine.hpp>

#include <fmt/format.h>
// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, which costs more per
// short message; it remains supported.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <cstring>

namespace onestop {

namespace {

void put_u64(std::string& out, std::uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  out.append(bytes, 8);
}

void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s.data(), s.size());
}

}  // namespace

Hash hash_event(const Event& e, const Hash& prev) {
  // Every field, length-prefixed, so no two different events serialise alike.
  thread_local std::string buf;
  buf.clear();
  buf.append(reinterpret_cast<const char*>(prev.data()), prev.size());
  put_u64(buf, e.case_id);
  put_u64(buf, e.seq);
  put_u64(buf, static_cast<std::uint64_t>(e.at.time_since_epoch().count()));
  put_str(buf, e.actor);
  put_u64(buf, static_cast<std::uint64_t>(e.kind));
  put_u64(buf, e.task);
  put_str(buf, e.node);
  put_str(buf, e.from);
  put_str(buf, e.to);
  put_str(buf, e.payload);
  // The low-level SHA-256 functions: several times faster than the EVP
  // interface for these short messages (no provider dispatch per call).
  Hash out{};
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, buf.data(), buf.size());
  SHA256_Final(out.data(), &ctx);
  return out;
}

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
