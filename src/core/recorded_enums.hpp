#pragma once

// The last enumerator of each enum a case's history records (each starts at
// 0): what replay reads back (codec.cpp) and what the engine checks before
// recording (input.cpp), kept in one place so that the two agree.

#include <onestop/case.hpp>
#include <onestop/engine.hpp>
#include <onestop/model.hpp>

namespace onestop::core {

template <class E>
struct LastOf;
template <>
struct LastOf<ActionKind> {
  static constexpr ActionKind value = ActionKind::rectify;
};
template <>
struct LastOf<Actor::Kind> {
  static constexpr Actor::Kind value = Actor::Kind::system;
};
template <>
struct LastOf<ApplicantKind> {
  static constexpr ApplicantKind value = ApplicantKind::other_organisation;
};
template <>
struct LastOf<MaterialForm> {
  static constexpr MaterialForm value = MaterialForm::electronic;
};
template <>
struct LastOf<Decision> {
  static constexpr Decision value = Decision::deemed_approved;
};
template <>
struct LastOf<TimeUnit> {
  static constexpr TimeUnit value = TimeUnit::natural_hours;
};

template <class E>
inline constexpr E last_of = LastOf<E>::value;

}  // namespace onestop::core
