// `satalab merge --out ALL.h5 IN.h5 ...`: unites shard files and partial runs
// of one sweep into one results file, as a single process would have written
// it (rows ordered by point_id).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string_view>
#include <utility>

#include "commands.hpp"
#include "satalab/error.hpp"
#include "satalab/io/output_path.hpp"
#include "satalab/io/results_file.hpp"

namespace satalab::cli {
namespace {

namespace fs = std::filesystem;

struct MergeOptions {
  std::string out;
  std::vector<std::string> inputs;
  bool force = false;
  bool allow_mixed_builds = false;
};

// `key = value` lines of a normalised config text, in order.
std::vector<std::pair<std::string, std::string>> config_lines(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    const std::size_t eq = line.find(" = ");
    if (eq != std::string_view::npos) lines.emplace_back(line.substr(0, eq), line.substr(eq + 3));
    pos = end + 1;
  }
  return lines;
}

// The first key whose value differs between two normalised config texts, as
// "key 'k' differs (v1 in 'a', v2 in 'b')".
std::string first_config_difference(const std::string& a, const std::string& b, const std::string& name_a,
                                    const std::string& name_b) {
  const auto la = config_lines(a), lb = config_lines(b);
  const auto value_in = [](const auto& lines, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : lines) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  const auto shown = [](const std::string* v) { return v != nullptr ? *v : std::string("absent"); };
  for (const auto& [key, value] : la) {
    const std::string* other = value_in(lb, key);
    if (other == nullptr || *other != value) {
      return fmt::format("key '{}' differs ({} in '{}', {} in '{}')", key, value, name_a, shown(other), name_b);
    }
  }
  for (const auto& [key, value] : lb) {
    if (value_in(la, key) == nullptr) {
      return fmt::format("key '{}' differs (absent in '{}', {} in '{}')", key, name_a, value, name_b);
    }
  }
  return "the config text differs";  // not in key = value form (not written by satalab sweep)
}

// "3, 5-9, 12" for sorted ids, at most `limit` runs.
std::string id_ranges(const std::vector<std::uint64_t>& ids, std::size_t limit = 20) {
  std::string out;
  std::size_t runs = 0;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (runs == limit) return out + ", ...";
    out += (runs ? ", " : "") + (i == j ? fmt::format("{}", ids[i]) : fmt::format("{}-{}", ids[i], ids[j]));
    ++runs;
    i = j + 1;
  }
  return out;
}

bool has_outputs(const PointRecord& r) {
  return !r.result.y.empty() || !r.result.y_truth.empty() || !r.result.z.empty();
}

int run_merge(const MergeOptions& o, const std::string& command_line) {
  if (o.out.empty()) throw InvalidArgument("--out MERGED.h5 is required");
  if (o.inputs.empty()) throw InvalidArgument("no input files (usage: satalab merge --out ALL.h5 PART.h5 ...)");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(o.out + ".journal", ec))) {
    throw InvalidArgument(fmt::format(
        "'{}' has the journal '{}' of an unfinished sweep; finish it with 'satalab sweep ... --resume' or merge into "
        "another file",
        o.out, o.out + ".journal"));
  }
  if (!o.force && fs::exists(fs::symlink_status(o.out, ec))) {
    throw InvalidArgument(fmt::format("'{}' exists (use --force to replace it)", o.out));
  }
  try {
    check_output_path(o.out, OutputMode::replace);  // the directory, before reading any input
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("--out: {}", e.what()));
  }

  std::vector<ResultsContents> files;
  files.reserve(o.inputs.size());
  for (const std::string& path : o.inputs) files.push_back(read_results_with_journal(path));
  const SweepMetadata& first = files.front().metadata;
  for (std::size_t i = 1; i < files.size(); ++i) {
    const SweepMetadata& m = files[i].metadata;
    if (m.config_text != first.config_text) {
      throw InvalidArgument(fmt::format(
          "'{}' is from another sweep than '{}' (sweep_id {} vs {}): {}", o.inputs[i], o.inputs[0],
          sweep_id(m.config_text), sweep_id(first.config_text),
          first_config_difference(first.config_text, m.config_text, o.inputs[0], o.inputs[i])));
    }
    if (m.total_points != first.total_points) {
      throw InvalidArgument(fmt::format("'{}' is from another sweep than '{}': key 'total_points' differs ({} vs {})",
                                        o.inputs[i], o.inputs[0], m.total_points, first.total_points));
    }
    if (m.git_commit != first.git_commit || m.satalab_version != first.satalab_version) {
      fmt::print(stderr, "satalab merge: warning: '{}' was written by satalab {} ({}), '{}' by {} ({})\n",
                 o.inputs[i], m.satalab_version, m.git_commit, o.inputs[0], first.satalab_version, first.git_commit);
    }
  }

  // Every build that computed points, each record's index remapped into this list.
  std::vector<BuildInfo> builds;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::vector<BuildInfo>& own = files[i].metadata.builds;
    std::vector<std::uint32_t> to_merged(own.size());
    for (std::size_t b = 0; b < own.size(); ++b) {
      if (!builds.empty() && !o.allow_mixed_builds) {
        if (const std::string d = builds_difference(builds, own[b]); !d.empty()) {
          throw InvalidArgument(fmt::format(
              "'{}' was written by another build than '{}' ({}); rerun with --allow-mixed-builds to continue anyway",
              o.inputs[i], o.inputs[0], d));
        }
      }
      std::size_t at = 0;
      while (at < builds.size() && !build_difference(builds[at], own[b]).empty()) ++at;
      if (at == builds.size()) builds.push_back(own[b]);
      to_merged[b] = static_cast<std::uint32_t>(at);
    }
    for (PointRecord& r : files[i].records) r.build = to_merged.at(r.build);
  }

  std::map<std::uint64_t, std::pair<PointRecord, std::size_t>> merged;  // point_id -> record, input index
  std::size_t duplicates = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    for (PointRecord& r : files[i].records) {
      const std::uint64_t id = r.params.point_id;
      if (id >= first.total_points) {
        throw InvalidArgument(fmt::format("'{}': point {} is outside the sweep's {} points", o.inputs[i], id,
                                          first.total_points));
      }
      const auto it = merged.find(id);
      if (it == merged.end()) {
        merged.emplace(id, std::pair{std::move(r), i});
        continue;
      }
      PointRecord& kept = it->second.first;
      const std::string difference = result_difference(kept, r);
      if (!difference.empty()) {
        throw InvalidArgument(fmt::format("point {} has conflicting results in '{}' and '{}': {}", id,
                                          o.inputs[it->second.second], o.inputs[i], difference));
      }
      if (!has_outputs(kept) && has_outputs(r)) kept.result = std::move(r.result);  // keep the saved outputs
      ++duplicates;
    }
  }

  SweepMetadata metadata = first;
  metadata.builds = std::move(builds);
  metadata.command_line = command_line;
  for (const ResultsContents& f : files) metadata.start_time = std::min(metadata.start_time, f.metadata.start_time);
  metadata.shard_index = metadata.shard_count = 1;
  metadata.shard_points = metadata.total_points;
  std::vector<PointRecord> records;
  records.reserve(merged.size());
  std::vector<std::uint64_t> missing;
  for (std::uint64_t id = 0; id < metadata.total_points; ++id) {
    const auto it = merged.find(id);
    if (it == merged.end()) {
      missing.push_back(id);
    } else {
      records.push_back(std::move(it->second.first));
    }
  }
  write_results(o.out, metadata, std::move(records));

  fmt::print(stderr, "satalab merge: {} points from {} files ({} duplicates dropped) -> {}\n", merged.size(),
             files.size(), duplicates, o.out);
  if (missing.empty()) {
    fmt::print(stderr, "satalab merge: all {} points of the sweep are present\n", metadata.total_points);
  } else {
    fmt::print(stderr,
               "satalab merge: {} of {} points missing: {}; compute them with 'satalab sweep CONFIG --out {} "
               "--resume'\n",
               missing.size(), metadata.total_points, id_ranges(missing), o.out);
  }
  return 0;
}

}  // namespace

Runner add_merge_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "merge",
      "Unite results files of one sweep (shards from 'satalab sweep --shard K/N', partial or interrupted runs,\n"
      "their journals included) into one file equal to a single-process run of the points they hold, rows\n"
      "ordered by point_id. Refuses files of different sweeps (naming the first config key that differs) and\n"
      "two different results for one point (naming it); drops exact duplicates (timings aside); writes\n"
      "atomically; reports the points still missing, which 'satalab sweep CONFIG --out MERGED.h5 --resume'\n"
      "then computes.");
  cmd->add_option("inputs", o->inputs, "Results files to merge (HDF5, from satalab sweep)")->required();
  cmd->add_option("--out,-o", o->out, "Merged results file (HDF5)")->required();
  cmd->add_flag("--force", o->force, "Replace an existing output file");
  cmd->add_flag("--allow-mixed-builds", o->allow_mixed_builds,
                "Merge files whose points different builds computed (commit, compiler, flags, instruction set or\n"
                "exp library); the merged file records every build and its points");
  return [o, command_line]() { return run_merge(*o, command_line); };
}

}  // namespace satalab::cli
