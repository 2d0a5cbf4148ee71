// Case state as a Boost.Serialization binary archive, for persistent stores.
//
// Every class has a declared version (BOOST_CLASS_VERSION below). When a
// field is added, bump its class's version and read the field only when
// `version` is at least the new one, so snapshots written by older builds
// still load. Flows are written as id and version, never as pointers, and
// resolved against the engine's catalog on reading.

#include "core/machine.hpp"
#include "core/state.hpp"

#include <onestop/error.hpp>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/device/back_inserter.hpp>
#include <boost/iostreams/stream.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/split_free.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <boost/serialization/version.hpp>

#include <fmt/format.h>

#include <cstring>

namespace onestop::core {
namespace {
// The catalog flows are resolved against while a snapshot is being read.
thread_local const CompiledCatalog* reading_catalog = nullptr;
}  // namespace
}  // namespace onestop::core

namespace boost::serialization {

// A value snapshots share (core::Shared) as its plain value: the archive
// format is that of the value; the sharing is in memory only.
template <class Archive, class T>
void shared_field(Archive& ar, onestop::core::Shared<T>& field) {
  if constexpr (Archive::is_loading::value) {
    T value;
    ar& value;
    field = std::move(value);
  } else {
    ar& const_cast<T&>(field.get());
  }
}

// std::chrono seconds-precision instants and durations as int64.
template <class Archive>
void save(Archive& ar, const onestop::Instant& t, unsigned) {
  const std::int64_t s = t.time_since_epoch().count();
  ar << s;
}
template <class Archive>
void load(Archive& ar, onestop::Instant& t, unsigned) {
  std::int64_t s = 0;
  ar >> s;
  t = onestop::Instant(std::chrono::seconds(s));
}
template <class Archive>
void serialize(Archive& ar, onestop::Instant& t, unsigned version) {
  split_free(ar, t, version);
}

template <class Archive>
void save(Archive& ar, const std::chrono::seconds& d, unsigned) {
  const std::int64_t s = d.count();
  ar << s;
}
template <class Archive>
void load(Archive& ar, std::chrono::seconds& d, unsigned) {
  std::int64_t s = 0;
  ar >> s;
  d = std::chrono::seconds(s);
}
template <class Archive>
void serialize(Archive& ar, std::chrono::seconds& d, unsigned version) {
  split_free(ar, d, version);
}

// std::optional (Boost 1.74 serialises only boost::optional).
template <class Archive, class T>
void save(Archive& ar, const std::optional<T>& o, unsigned) {
  const bool has = o.has_value();
  ar << has;
  if (has) ar << *o;
}
template <class Archive, class T>
void load(Archive& ar, std::optional<T>& o, unsigned) {
  bool has = false;
  ar >> has;
  if (has) {
    T value{};
    ar >> value;
    o = std::move(value);
  } else {
    o.reset();
  }
}
template <class Archive, class T>
void serialize(Archive& ar, std::optional<T>& o, unsigned version) {
  split_free(ar, o, version);
}

template <class Archive>
void serialize(Archive& ar, onestop::Hash& h, unsigned) {
  ar& make_array(h.data(), h.size());
}

// Values: a type tag, then the content.
template <class Archive>
void save(Archive& ar, const onestop::Value& v, unsigned) {
  const auto type = static_cast<std::uint8_t>(v.type());
  ar << type;
  switch (v.type()) {
    case onestop::Value::Type::null: break;
    case onestop::Value::Type::boolean: {
      const bool b = v.as_bool();
      ar << b;
      break;
    }
    case onestop::Value::Type::number: {
      const double d = v.as_number();
      ar << d;
      break;
    }
    case onestop::Value::Type::string: ar << v.as_string(); break;
    case onestop::Value::Type::list: ar << v.as_list(); break;
  }
}
template <class Archive>
void load(Archive& ar, onestop::Value& v, unsigned) {
  std::uint8_t type = 0;
  ar >> type;
  switch (static_cast<onestop::Value::Type>(type)) {
    case onestop::Value::Type::null: v = onestop::Value(); break;
    case onestop::Value::Type::boolean: {
      bool b = false;
      ar >> b;
      v = onestop::Value(b);
      break;
    }
    case onestop::Value::Type::number: {
      double d = 0;
      ar >> d;
      v = onestop::Value(d);
      break;
    }
    case onestop::Value::Type::string: {
      std::string s;
      ar >> s;
      v = onestop::Value(std::move(s));
      break;
    }
    case onestop::Value::Type::list: {
      onestop::Value::List l;
      ar >> l;
      v = onestop::Value(std::move(l));
      break;
    }
    default:
      throw onestop::Error(onestop::ErrorCode::storage, fmt::format("snapshot: unknown value type {}", type));
  }
}
template <class Archive>
void serialize(Archive& ar, onestop::Value& v, unsigned version) {
  split_free(ar, v, version);
}

// Enumerations as their underlying integers. Saving only reads: a state
// is shared (a store's cache, the simulator's tap) while a store encodes
// it, and even writing back the same value races with those reads.
template <class Archive, class E>
void enum_field(Archive& ar, E& e) {
  if constexpr (Archive::is_loading::value) {
    std::underlying_type_t<E> raw{};
    ar& raw;
    e = static_cast<E>(raw);
  } else {
    const E& saved = e;  // read only
    auto raw = static_cast<std::underlying_type_t<E>>(saved);
    ar& raw;
  }
}

template <class Archive>
void serialize(Archive& ar, onestop::TimeLimit& l, unsigned) {
  ar& l.amount;
  enum_field(ar, l.unit);
}

template <class Archive>
void serialize(Archive& ar, onestop::LimitClock& c, unsigned) {
  ar& c.limit& c.started& c.due& c.paused_at& c.suspended;
}

template <class Archive>
void serialize(Archive& ar, onestop::Applicant& a, unsigned) {
  enum_field(ar, a.kind);
  ar& a.id& a.name;
}

template <class Archive>
void serialize(Archive& ar, onestop::OfferedMaterial& m, unsigned) {
  ar& m.id& m.file_name& m.bytes;
  enum_field(ar, m.form);
}

template <class Archive>
void serialize(Archive& ar, onestop::Signature& s, unsigned) {
  ar& s.user& s.slot;
  enum_field(ar, s.decision);
  ar& s.at;
}

template <class Archive>
void serialize(Archive& ar, onestop::Evaluation& e, unsigned) {
  ar& e.rating& e.comment& e.at;
}

template <class Archive>
void serialize(Archive& ar, onestop::FollowUp& f, unsigned) {
  ar& f.opened& f.due& f.closed& f.outcome;
}

// A frame names its flow by id and version.
template <class Archive>
void save(Archive& ar, const onestop::core::Frame& f, unsigned) {
  const std::string id = f.flow->def->id;
  const int version = f.flow->def->version;
  ar << id << version << f.parent << f.parent_token << f.done;
  const auto outcome = static_cast<std::uint8_t>(f.outcome);
  ar << outcome;
}
template <class Archive>
void load(Archive& ar, onestop::core::Frame& f, unsigned) {
  std::string id;
  int version = 0;
  std::uint8_t outcome = 0;
  ar >> id >> version >> f.parent >> f.parent_token >> f.done >> outcome;
  f.outcome = static_cast<onestop::Outcome>(outcome);
  const onestop::core::CompiledCatalog* catalog = onestop::core::reading_catalog;
  f.flow = catalog == nullptr ? nullptr : catalog->flow(id, version);
  if (f.flow == nullptr) {
    throw onestop::Error(onestop::ErrorCode::not_found,
                         fmt::format("the case runs flow '{}' version {}, which the catalog does not contain", id, version));
  }
}
template <class Archive>
void serialize(Archive& ar, onestop::core::Frame& f, unsigned version) {
  split_free(ar, f, version);
}

template <class Archive>
void serialize(Archive& ar, onestop::core::Token& t, unsigned) {
  ar& t.id& t.frame& t.node;
  enum_field(ar, t.wait);
  ar& t.task& t.child& t.due& t.in_edge;
  enum_field(ar, t.decision);
  ar& t.clock& t.timed_out;
}

template <class Archive>
void serialize(Archive& ar, onestop::core::JoinWait& j, unsigned) {
  ar& j.frame& j.node& j.expected& j.arrived& j.approvals& j.rejections;
}

template <class Archive>
void serialize(Archive& ar, onestop::core::TaskRecord& t, unsigned version) {
  ar& t.id& t.frame& t.node;
  enum_field(ar, t.state);
  enum_field(ar, t.decision);
  ar& t.created;
  // The due instant as the optional it was.
  std::optional<onestop::Instant> due = t.due;
  ar& due;
  if constexpr (Archive::is_loading::value) t.due = due;
  // The extras as the three fields they were before they shared one record.
  if constexpr (Archive::is_loading::value) {
    onestop::core::TaskExtras x;
    ar& x.assigned_user& x.added_signers& x.signatures;
    t.extras = std::move(x);  // none when empty
  } else {
    auto& x = const_cast<onestop::core::TaskExtras&>(t.extras.get());
    ar& x.assigned_user& x.added_signers& x.signatures;
  }
  ar& t.urges& t.failed;
  // Version 2: whether a return completed the task. Earlier snapshots load
  // without it (false): their returned tasks count as decided, as they did.
  if (version >= 2) ar& t.returned;
}

// A task list as the vector of tasks it was before tasks were kept in
// shared chunks: the archive format is unchanged.
template <class Archive>
void tasks_field(Archive& ar, onestop::core::TaskList& tasks) {
  std::vector<onestop::core::TaskRecord> plain;
  if constexpr (Archive::is_loading::value) {
    ar& plain;
    tasks.clear();
    for (auto& t : plain) tasks.push_back(std::move(t));
  } else {
    plain.assign(tasks.begin(), tasks.end());
    ar& plain;
  }
}

// The warning thresholds crossed. Boost writes a vector of these pairs as
// raw memory, padding included (two bytes a pair): saved from a zeroed copy
// so that equal states give equal bytes, whatever the heap held before.
template <class Archive>
void warned_field(Archive& ar, std::vector<std::pair<std::uint32_t, std::uint16_t>>& warned) {
  if constexpr (Archive::is_loading::value) {
    ar& warned;
  } else {
    std::vector<std::pair<std::uint32_t, std::uint16_t>> plain(warned.size());
    if (!plain.empty()) std::memset(static_cast<void*>(plain.data()), 0, plain.size() * sizeof plain[0]);
    for (std::size_t i = 0; i < warned.size(); ++i) {
      plain[i].first = warned[i].first;
      plain[i].second = warned[i].second;
    }
    ar& plain;
  }
}

// The case's extras as the fields of the state they were before they shared
// one record, each in its old place: the archive format is unchanged.
template <class Archive>
void serialize(Archive& ar, onestop::CaseSnapshot& s, unsigned version) {
  onestop::core::CaseExtras loaded;
  auto& x = Archive::is_loading::value ? loaded : const_cast<onestop::core::CaseExtras&>(s.extras.get());
  ar& s.id;
  shared_field(ar, s.target);
  ar& s.is_theme& s.target_version;
  shared_field(ar, s.applicant);
  shared_field(ar, s.form);
  shared_field(ar, s.materials);
  enum_field(ar, s.status);
  ar& s.outcome& s.version& s.submitted& s.finished& x.error;
  ar& s.frames& s.tokens& s.joins;
  tasks_field(ar, s.tasks);
  ar& s.next_token& s.next_task;
  enum_field(ar, s.status_before_wait);
  ar& x.suspended_since& s.promised_clock& s.statutory_clock;
  warned_field(ar, s.warned);
  ar& x.special_kind& x.special_until& s.paused;
  ar& x.evaluation& x.follow_up& x.follow_up_warned;
  ar& s.seq& s.last_hash;
  // Version 2: the engine rules the case runs under; earlier snapshots ran
  // under the first.
  if (version >= 2) {
    ar& s.rules;
  } else if constexpr (Archive::is_loading::value) {
    s.rules = 1;
  }
  if constexpr (Archive::is_loading::value) s.extras = std::move(loaded);  // none when empty
}

}  // namespace boost::serialization

// Version 1 of every class: the first persistent layout.
BOOST_CLASS_VERSION(onestop::CaseSnapshot, 2)
BOOST_CLASS_VERSION(onestop::core::Frame, 1)
BOOST_CLASS_VERSION(onestop::core::Token, 1)
BOOST_CLASS_VERSION(onestop::core::JoinWait, 1)
BOOST_CLASS_VERSION(onestop::core::TaskRecord, 2)
BOOST_CLASS_VERSION(onestop::LimitClock, 1)
BOOST_CLASS_VERSION(onestop::Applicant, 1)
BOOST_CLASS_VERSION(onestop::OfferedMaterial, 1)
BOOST_CLASS_VERSION(onestop::Signature, 1)
BOOST_CLASS_VERSION(onestop::Evaluation, 1)
BOOST_CLASS_VERSION(onestop::FollowUp, 1)
BOOST_CLASS_VERSION(onestop::Value, 1)

namespace onestop::core {

namespace {
// Small archives: no header text, only the payload (the header's library
// version is kept by Boost in each class record instead).
constexpr unsigned archive_flags = boost::archive::no_header | boost::archive::no_codecvt;
// Our own prefix: a magic with the format generation, then a checksum of
// the payload, so a damaged snapshot is refused before Boost reads lengths
// out of it.
constexpr char magic[4] = {'O', 'S', 'S', '1'};
constexpr std::size_t prefix = sizeof magic + 8;

// A fast 64-bit checksum over 8-byte words (not cryptographic: the history
// chain is the tamper evidence; this catches damage).
std::uint64_t checksum(std::string_view bytes) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ bytes.size();
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 29);
}
}  // namespace

std::string encode_snapshot(const CaseSnapshot& s) {
  if (s.chain_pending) {
    // Its last_hash is not the chain's end (Commit::unhashed): stored, it
    // would be taken for it. Only a store that derives the chain gets such
    // states, and it must keep them as they are (Store::derives_chain).
    throw Error(ErrorCode::internal,
                fmt::format("case {}: a state whose history was committed unhashed cannot be encoded; a store or "
                            "wrapper that encodes states must not answer derives_chain() true",
                            s.id));
  }
  std::string out(prefix, '\0');
  std::memcpy(out.data(), magic, sizeof magic);
  {
    boost::iostreams::stream<boost::iostreams::back_insert_device<std::string>> stream(out);
    boost::archive::binary_oarchive ar(stream, archive_flags);
    ar << s;
  }
  const std::uint64_t sum = checksum(std::string_view(out).substr(prefix));
  std::memcpy(out.data() + sizeof magic, &sum, 8);
  return out;
}

std::shared_ptr<CaseSnapshot> decode_snapshot(const CompiledCatalog& catalog, std::string_view bytes) {
  if (bytes.size() < prefix || bytes.substr(0, sizeof magic) != std::string_view(magic, sizeof magic)) {
    throw Error(ErrorCode::storage, "snapshot: not a onestop case snapshot (bad magic)");
  }
  std::uint64_t sum = 0;
  std::memcpy(&sum, bytes.data() + sizeof magic, 8);
  if (sum != checksum(bytes.substr(prefix))) {
    throw Error(ErrorCode::storage, "snapshot: damaged (its checksum does not match)");
  }
  auto s = std::make_shared<CaseSnapshot>();
  struct Reset {
    ~Reset() { reading_catalog = nullptr; }
  } reset;
  reading_catalog = &catalog;
  try {
    boost::iostreams::stream<boost::iostreams::array_source> stream(bytes.data() + prefix, bytes.size() - prefix);
    boost::archive::binary_iarchive ar(stream, archive_flags);
    ar >> *s;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::storage, fmt::format("snapshot: cannot be read ({})", e.what()));
  }
  // Guard the indices the machine trusts.
  for (const auto& t : s->tasks) {
    if (t.frame >= s->frames.size() || t.node >= s->frames[t.frame].flow->nodes.size()) {
      throw Error(ErrorCode::storage, fmt::format("snapshot of case {}: task {} points outside its flow", s->id, t.id));
    }
  }
  for (const auto& t : s->tokens) {
    if (t.frame >= s->frames.size() || t.node >= s->frames[t.frame].flow->nodes.size()) {
      throw Error(ErrorCode::storage, fmt::format("snapshot of case {}: token {} points outside its flow", s->id, t.id));
    }
  }
  return s;
}

}  // namespace onestop::core
