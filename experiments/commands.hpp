#pragma once
// The `satalab` command-line tool. Each subcommand registers itself on the
// CLI11 app and returns a callback that runs it after parsing.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "satalab/numeric/precision_policy.hpp"

namespace satalab::cli {

// Exit codes: 0 success, 2 bad input or a request that will not fit (one line
// on stderr, nothing written), 1 an unexpected internal error.
inline constexpr int kExitBadInput = 2;

using Runner = std::function<int()>;

Runner add_info_command(CLI::App& app);
Runner add_run_command(CLI::App& app, const std::string& command_line);
Runner add_sweep_command(CLI::App& app, const std::string& command_line);
Runner add_bench_command(CLI::App& app, const std::string& command_line);
Runner add_merge_command(CLI::App& app, const std::string& command_line);
Runner add_drift_command(CLI::App& app, const std::string& command_line);
Runner add_advise_command(CLI::App& app, const std::string& command_line);

int main(int argc, char** argv);

}  // namespace satalab::cli
