#pragma once

// UTF-8 well-formedness (RFC 3629): no stray continuation bytes, truncated
// or overlong sequences, surrogates or code points past U+10FFFF.

#include <cstddef>
#include <string>
#include <string_view>

namespace onestop {

// The byte offset of the first invalid UTF-8 sequence in `s`, or npos.
std::size_t invalid_utf8_at(std::string_view s) noexcept;

// `s` with each byte that does not start a valid sequence replaced by
// U+FFFD (the replacement character).
std::string valid_utf8(std::string_view s);

}  // namespace onestop
