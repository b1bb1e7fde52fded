#pragma once
/// Errors: library code throws graft::Error; only main() catches and prints.

#include <sstream>
#include <stdexcept>
#include <string>

namespace graft {

/// Bad input or a failed operation. The message names the file or option,
/// the value seen and the value expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A usage error (bad command-line option): main() exits with code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

/// Concatenates the arguments with operator<< into one string.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

}  // namespace graft

/// Throws graft::Error with the concatenated message when cond is false.
#define GRAFT_CHECK(cond, ...)                               \
  do {                                                       \
    if (!(cond)) throw ::graft::Error(::graft::str_cat(__VA_ARGS__)); \
  } while (0)

/// Throws graft::UsageError (exit code 2) when cond is false.
#define GRAFT_CHECK_USAGE(cond, ...)                                   \
  do {                                                                 \
    if (!(cond)) throw ::graft::UsageError(::graft::str_cat(__VA_ARGS__)); \
  } while (0)
