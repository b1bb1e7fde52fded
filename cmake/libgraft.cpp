// libgraft.so is graft_core whole (CMakeLists.txt); a shared library target
// needs a source of its own, and this is it.
