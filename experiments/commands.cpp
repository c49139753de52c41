#include "commands.hpp"

#include <fmt/format.h>

#include <iostream>

#include "satalab/error.hpp"
#include "satalab/version.hpp"
#include "sweep_mpi.hpp"

namespace satalab::cli {

int main(int argc, char** argv) {
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  CLI::App app{
      "satalab: how far symmetry-aware Taylor attention (SATA, Heinsen & Kozachkov 2026) lands from exact\n"
      "softmax attention, at the precisions models run in, and what it costs.",
      "satalab"};
  app.set_version_flag("--version", std::string("satalab ") + satalab::version() + " (" + satalab::git_commit() + ")");
  app.require_subcommand(1);
  app.footer("Run 'satalab <subcommand> --help' for the options of each subcommand.");
  const Runner info = add_info_command(app);
  const Runner run = add_run_command(app, command_line);
  const Runner sweep = add_sweep_command(app, command_line);
  const Runner bench = add_bench_command(app, command_line);
  const Runner merge = add_merge_command(app, command_line);
  const Runner drift = add_drift_command(app, command_line);
  const Runner advise = add_advise_command(app, command_line);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "satalab: error: " << e.what() << " (see 'satalab --help')\n";
    return kExitBadInput;
  }
  try {
    // Only `sweep` shares its work between ranks; anything else would run once per rank.
    if (const std::uint64_t ranks = launched_ranks(); ranks > 1 && !app.got_subcommand("sweep")) {
      if (launched_rank() > 0) return kExitBadInput;  // rank 0 says why, once
      throw InvalidArgument(fmt::format("'satalab {}' does not use MPI but was started as one of {} ranks "
                                        "(mpirun/srun); start it as one process",
                                        app.get_subcommands().front()->get_name(), ranks));
    }
    if (app.got_subcommand("info")) return info();
    if (app.got_subcommand("run")) return run();
    if (app.got_subcommand("sweep")) return sweep();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("merge")) return merge();
    if (app.got_subcommand("drift")) return drift();
    if (app.got_subcommand("advise")) return advise();
  } catch (const InvalidArgument& e) {
    std::cerr << "satalab: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const ResourceLimit& e) {
    std::cerr << "satalab: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "satalab: internal error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}

}  // namespace satalab::cli
