// libgraft.so is graft_core whole (CMakeLists.txt); a shared library target
// needs a source of its own, and this is it. It also holds the entry point
// that the graft program (src/cli/main.cpp, a launcher without LibTorch)
// looks up once it has chosen the OpenMP wait policy.

#include "graft/cli/cli.h"

extern "C" int graft_cli_main(int argc, char** argv) { return graft::cli::main(argc, argv); }
