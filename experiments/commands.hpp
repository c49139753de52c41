#pragma once
// The `satalab` command-line tool: subcommands info and run.
namespace satalab::cli {

// Exit codes: 0 success, 2 bad input (one line on stderr, nothing written),
// 1 an unexpected internal error.
inline constexpr int kExitBadInput = 2;

int main(int argc, char** argv);

}  // namespace satalab::cli
