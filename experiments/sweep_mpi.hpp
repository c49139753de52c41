#pragma once
// `mpirun -np R satalab sweep`: rank 0 is the only writer and hands groups of
// points (points sharing one truth) out dynamically, most expensive first, to
// every rank including itself; the other ranks compute and send finished
// points back (encoded as journal point records). Built only with SATALAB_MPI.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "satalab/io/results_file.hpp"

namespace satalab::cli {

// The number of ranks a launcher started this process as one of, from the
// environment (OMPI_COMM_WORLD_SIZE of Open MPI's mpirun, PMI_SIZE of srun and
// MPICH/Hydra); 0 when not started by one.
std::uint64_t launched_ranks();
// This process's rank among them (OMPI_COMM_WORLD_RANK, PMI_RANK); 0 when not known.
std::uint64_t launched_rank();

using RecordSink = std::function<void(PointRecord&&)>;
// Computes the listed points (one group) and passes each finished one to the sink.
using GroupRunner = std::function<void(const std::vector<std::uint64_t>& point_ids, const RecordSink& sink)>;

#if SATALAB_WITH_MPI
// MPI_Init_thread (funneled: only the main thread calls MPI) and MPI_Finalize.
class MpiRuntime {
 public:
  MpiRuntime();
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // rank 0's `ok`, on every rank.
  bool broadcast(bool ok) const;
  // Whether every rank's `ok` is true.
  bool all(bool ok) const;

 private:
  int rank_ = 0, size_ = 1;
};

// Rank 0: hands `groups` out in this order to all ranks (itself through a
// compute thread) and passes every finished point to `sink` on this thread.
// Stops handing out once `interrupted` is set; returns when every rank is
// idle. An error of any rank (or of the sink) is rethrown after that.
void distribute_groups(const MpiRuntime& mpi, const std::vector<std::vector<std::uint64_t>>& groups,
                       const GroupRunner& run, const RecordSink& sink, const std::atomic<bool>& interrupted);

// Ranks > 0: ask rank 0 for groups, compute them, send each finished point,
// until rank 0 has no more.
void serve_groups(const MpiRuntime& mpi, const GroupRunner& run);
#endif

}  // namespace satalab::cli
