#pragma once
/// The command-line program as a library function, so tests run every verb
/// in-process.

#include <string>
#include <vector>

namespace graft::cli {

/// Parses argv, dispatches to the verb, catches graft::Error and prints
/// "error: ..." on stderr. Returns the exit code: 0 success, 1 runtime error,
/// 2 usage error, 130 interrupted.
int main(int argc, char** argv);

/// The same with an argument list (without the program name).
int run(const std::vector<std::string>& args);

}  // namespace graft::cli
