#pragma once

// The version is written once, here; CMake reads it from this line.
#define ONESTOP_VERSION_STRING "0.1.0"
#define ONESTOP_VERSION_MAJOR 0
#define ONESTOP_VERSION_MINOR 1
#define ONESTOP_VERSION_PATCH 0

namespace onestop {
// The library's version, for hosts that log it.
inline constexpr const char* version = ONESTOP_VERSION_STRING;
}  // namespace onestop
