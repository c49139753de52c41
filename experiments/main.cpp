// satalab: command-line entry point. The subcommands live in commands.hpp.
#include "commands.hpp"

int main(int argc, char** argv) { return satalab::cli::main(argc, argv); }
