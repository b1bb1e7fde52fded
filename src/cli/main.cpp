#include "graft/cli/cli.h"

int main(int argc, char** argv) { return graft::cli::main(argc, argv); }
