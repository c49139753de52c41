// MPI execution of a sweep (see sweep_mpi.hpp). Rank 0 polls with MPI_Iprobe
// and short sleeps rather than blocking in MPI_Recv, because Open MPI's
// blocking calls spin and would take a core from rank 0's own compute thread.
#include "sweep_mpi.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <initializer_list>
#include <string_view>

#include "satalab/error.hpp"

#if SATALAB_WITH_MPI
#include <mpi.h>

#include <chrono>
#include <climits>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#endif

namespace satalab::cli {

namespace {

// The first of the environment variables `names` that holds a whole number; 0 if none does.
std::uint64_t environment_number(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value == nullptr) continue;
    const std::string_view text(value);
    std::uint64_t ranks = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ranks);
    if (ec == std::errc() && end == text.data() + text.size()) return ranks;
  }
  return 0;
}

}  // namespace

std::uint64_t launched_ranks() { return environment_number({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}); }

std::uint64_t launched_rank() { return environment_number({"OMPI_COMM_WORLD_RANK", "PMI_RANK"}); }

#if SATALAB_WITH_MPI
namespace {

// Messages: a rank asks for work (empty), rank 0 assigns a group (its point
// ids; none: stop), a rank returns a finished point (its journal encoding) or
// the one-line error that stopped it.
constexpr int kTagRequest = 1, kTagAssign = 2, kTagRecord = 3, kTagError = 4;

void check(int code, const char* what) {
  if (code != MPI_SUCCESS) throw std::runtime_error(fmt::format("MPI: {} failed (code {})", what, code));
}

}  // namespace

MpiRuntime::MpiRuntime() {
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

MpiRuntime::~MpiRuntime() { MPI_Finalize(); }

bool MpiRuntime::broadcast(bool ok) const {
  int flag = ok ? 1 : 0;
  check(MPI_Bcast(&flag, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return flag != 0;
}

bool MpiRuntime::all(bool ok) const {
  int mine = ok ? 1 : 0, every = 0;
  check(MPI_Allreduce(&mine, &every, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  return every != 0;
}

void distribute_groups(const MpiRuntime& mpi, const std::vector<std::vector<std::uint64_t>>& groups,
                       const GroupRunner& run, const RecordSink& sink, const std::atomic<bool>& interrupted) {
  std::mutex mutex;  // guards next, stop, outbox, failure
  std::size_t next = 0;
  bool stop = false;
  std::deque<PointRecord> outbox;
  std::exception_ptr failure;
  const auto take = [&]() -> std::optional<std::size_t> {
    const std::lock_guard lock(mutex);
    if (stop || interrupted || next == groups.size()) return std::nullopt;
    return next++;
  };
  const auto fail = [&](std::exception_ptr e) {
    const std::lock_guard lock(mutex);
    if (!failure) failure = e;
    stop = true;
  };

  std::atomic<bool> local_done{false};
  std::thread local([&] {
    try {
      while (const auto g = take()) {
        run(groups[*g], [&](PointRecord&& r) {
          const std::lock_guard lock(mutex);
          outbox.push_back(std::move(r));
        });
      }
    } catch (...) {
      fail(std::current_exception());
    }
    local_done = true;
  });

  int active = mpi.size() - 1;  // ranks that have not been told to stop
  bool failed = false;
  while (true) {
    std::deque<PointRecord> ready;
    {
      const std::lock_guard lock(mutex);
      ready.swap(outbox);
      failed = failure != nullptr;
    }
    bool progress = !ready.empty();
    for (PointRecord& r : ready) {
      if (failed) break;  // after a failure nothing more is journaled
      try {
        sink(std::move(r));
      } catch (...) {
        fail(std::current_exception());
        failed = true;
      }
    }
    int flag = 0;
    MPI_Status status;
    check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
    if (flag) {
      progress = true;
      const int source = status.MPI_SOURCE;
      int bytes = 0;
      check(MPI_Get_count(&status, MPI_BYTE, &bytes), "MPI_Get_count");
      std::string buffer(static_cast<std::size_t>(bytes), '\0');
      check(MPI_Recv(buffer.data(), bytes, MPI_BYTE, source, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "MPI_Recv");
      if (status.MPI_TAG == kTagRequest) {
        const auto g = take();
        const std::vector<std::uint64_t> none;
        const std::vector<std::uint64_t>& ids = g ? groups[*g] : none;
        check(MPI_Send(ids.data(), static_cast<int>(ids.size()), MPI_UINT64_T, source, kTagAssign, MPI_COMM_WORLD),
              "MPI_Send");
        if (!g) --active;
      } else if (status.MPI_TAG == kTagRecord) {
        if (!failed) {
          try {
            sink(decode_point_record(buffer));
          } catch (...) {
            fail(std::current_exception());
          }
        }
      } else if (status.MPI_TAG == kTagError) {
        fail(std::make_exception_ptr(InvalidArgument(fmt::format("rank {}: {}", source, buffer))));
        --active;
      }
    }
    if (!progress) {
      bool idle = false;
      {
        const std::lock_guard lock(mutex);
        idle = active == 0 && local_done && outbox.empty();
      }
      if (idle) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  local.join();
  if (failure) std::rethrow_exception(failure);
}

void serve_groups(const MpiRuntime&, const GroupRunner& run) {
  while (true) {
    check(MPI_Send(nullptr, 0, MPI_BYTE, 0, kTagRequest, MPI_COMM_WORLD), "MPI_Send");
    MPI_Status status;
    check(MPI_Probe(0, kTagAssign, MPI_COMM_WORLD, &status), "MPI_Probe");
    int count = 0;
    check(MPI_Get_count(&status, MPI_UINT64_T, &count), "MPI_Get_count");
    std::vector<std::uint64_t> ids(static_cast<std::size_t>(count));
    check(MPI_Recv(ids.data(), count, MPI_UINT64_T, 0, kTagAssign, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    if (ids.empty()) return;
    try {
      run(ids, [&](PointRecord&& r) {
        const std::string bytes = encode_point_record(r);
        if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
          throw InvalidArgument(fmt::format(
              "point {}: its record of {} bytes exceeds one MPI message (2 GiB); run it without --save-outputs or "
              "without mpirun",
              r.params.point_id, bytes.size()));
        }
        check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, kTagRecord, MPI_COMM_WORLD),
              "MPI_Send");
      });
    } catch (const std::exception& e) {
      const std::string message = e.what();
      check(MPI_Send(message.data(), static_cast<int>(message.size()), MPI_BYTE, 0, kTagError, MPI_COMM_WORLD),
            "MPI_Send");
      return;
    }
  }
}
#endif

}  // namespace satalab::cli
