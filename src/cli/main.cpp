// The graft program: a launcher that links no LibTorch. It chooses the
// OpenMP wait policy (graft/core/wait_policy.h) while libgomp is not yet
// loaded, then loads libgraft.so (beside this program in the build folder,
// in ../lib when installed: the RUNPATH says where) and runs the CLI in it.

#include <dlfcn.h>

#include <cstdio>

#include "graft/core/wait_policy.h"

int main(int argc, char** argv) {
  graft::apply_wait_policy();
  void* lib = dlopen(GRAFT_LIBRARY_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr,
                 "error: graft cannot load its library %s (%s); expected it beside the graft program or in "
                 "../lib of its installation\n",
                 GRAFT_LIBRARY_SONAME, dlerror());
    return 1;
  }
  using Main = int (*)(int, char**);
  auto run = reinterpret_cast<Main>(dlsym(lib, "graft_cli_main"));
  if (run == nullptr) {
    std::fprintf(stderr, "error: %s has no graft_cli_main (%s): is it from another graft version?\n",
                 GRAFT_LIBRARY_SONAME, dlerror());
    return 1;
  }
  return run(argc, argv);
}
