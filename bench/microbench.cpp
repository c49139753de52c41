// Microbenchmarks of the kernels (Google Benchmark; not part of ctest): the
// feature map, the fused decode step, the chunked prefill, exact attention
// (prefill and decode over a KV cache), and the machine bounds they are read
// against (Eigen GEMM, memcpy). Each reports FLOP/s or bytes/s:
//
//   build/release/bench/satalab_microbench --benchmark_filter=DecodeStep
//
// `satalab bench` measures the same kernels at scale (contexts up to 100M
// tokens, many heads) and writes HDF5; these are the quick, per-kernel view.
//
// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "attention/detail/features.hpp"  // internal: the fast feature build
#include "satalab/attention/exact_decoder.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/cost/cost.hpp"

namespace {

using namespace satalab;

template <class T>
std::vector<T> random_values(std::size_t count, unsigned seed, const Rounder<T>& input) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> out(count);
  for (auto& x : out) x = input(T(normal(rng)));
  return out;
}

const char* policy_name(std::int64_t index) { return index == 0 ? "fp32" : "fp16-acc32"; }

// Features of one input (key side, paper placement): degree by degree with
// the vectorised rounding, as the decode step builds them.
void FeatureMap(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0)), P = static_cast<std::size_t>(state.range(1));
  const PrecisionPolicy policy = precision_policy(policy_name(state.range(2)));
  const PolicyRounders<float> round(policy);
  const SymmetricBasis basis(d, P);
  const float c = std::sqrt(static_cast<float>(d));
  const FeatureCoefficients<float> coef = feature_coefficients(basis, c, CoefficientPlacement::paper, round.compute);
  const std::vector<float> x = random_values<float>(d, 1, round.input);
  std::vector<float> out(basis.total_size()), scaled(d);
  for (auto _ : state) {
    detail::side_features(basis, coef, detail::FeatureSide::key, x.data(), round.compute, scaled.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const auto features = static_cast<double>(basis.total_size());
  state.SetLabel(policy.name);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(basis.total_size()));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(basis.total_size() * sizeof(float)));
  // One product from the parent and one by the coefficient per feature.
  state.counters["FLOP/s"] = benchmark::Counter(2 * features, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(FeatureMap)->ArgsProduct({{8, 16, 32, 64}, {4}, {0, 1}})->Args({8, 8, 0});

// The same features with the public monomial_features (a rounder call per
// product): the token-by-token path.
void FeatureMapTokenByToken(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0)), P = static_cast<std::size_t>(state.range(1));
  const PrecisionPolicy policy = precision_policy(policy_name(state.range(2)));
  const PolicyRounders<float> round(policy);
  const SymmetricBasis basis(d, P);
  const std::vector<float> x = random_values<float>(d, 1, round.input);
  std::vector<float> out(basis.total_size());
  for (auto _ : state) {
    monomial_features(basis, x.data(), out.data(), round.compute);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(policy.name);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(basis.total_size()));
  state.counters["FLOP/s"] =
      benchmark::Counter(static_cast<double>(basis.total_size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(FeatureMapTokenByToken)->ArgsProduct({{8, 16, 32, 64}, {4}, {0, 1}})->Args({8, 8, 0});

// One fused decode step of one head: the state read and written once.
void DecodeStep(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0)), P = static_cast<std::size_t>(state.range(1));
  const PrecisionPolicy policy = precision_policy(policy_name(state.range(2)));
  const PolicyRounders<float> round(policy);
  AttentionOptions options;
  options.taylor_terms = P;
  auto basis = std::make_shared<const SymmetricBasis>(d, P);
  SataState<float> sata(basis, d, policy, options);
  const std::vector<float> q = random_values<float>(16 * d, 2, round.input), k = random_values<float>(16 * d, 3, round.input),
                           v = random_values<float>(16 * d, 4, round.input);
  std::vector<float> y(d);
  float z = 0;
  std::size_t t = 0;
  for (auto _ : state) {
    const std::size_t at = (t++ % 16) * d;
    sata.step(q.data() + at, k.data() + at, v.data() + at, y.data(), &z);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(policy.name);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * sata.state_elements() * sizeof(float)));
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(sata_cost(d, d, P).flops_per_token),
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(DecodeStep)->ArgsProduct({{8, 16, 32, 64}, {4}, {0, 1}})->Args({8, 8, 0});

// Causal chunked prefill of 2,048 tokens of one head (threads inside it).
void Prefill(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0)), P = static_cast<std::size_t>(state.range(1));
  const std::size_t n = 2048;
  const PrecisionPolicy policy = precision_policy(policy_name(state.range(2)));
  const PolicyRounders<float> round(policy);
  AttentionOptions options;
  options.taylor_terms = P;
  auto basis = std::make_shared<const SymmetricBasis>(d, P);
  const std::vector<float> q = random_values<float>(n * d, 5, round.input), k = random_values<float>(n * d, 6, round.input),
                           v = random_values<float>(n * d, 7, round.input);
  std::vector<float> y(n * d), z(n);
  for (auto _ : state) {
    state.PauseTiming();
    SataState<float> sata(basis, d, policy, options);
    state.ResumeTiming();
    sata_causal_prefill(sata, q.data(), k.data(), v.data(), n, options.effective_chunk(), y.data(), z.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(policy.name);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  // The inter-chunk products Φ(Q)·S and Φ(K)ᵀ·[V 1]: 4·features·(d+1) per token.
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(4 * n * feature_count(d, P) * (d + 1)),
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(Prefill)->ArgsProduct({{8, 16, 32}, {4}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

// Causal exact attention of one head (tiled matrix products), fp32 or fp64.
template <class T>
void ExactAttention(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)), d = static_cast<std::size_t>(state.range(1));
  const PrecisionPolicy policy = precision_policy(std::is_same_v<T, float> ? "fp32" : "fp64");
  const PolicyRounders<T> round(policy);
  HeadTensor<T> q(1, n, d), k(1, n, d), v(1, n, d);
  q.data = random_values<T>(n * d, 8, round.input);
  k.data = random_values<T>(n * d, 9, round.input);
  v.data = random_values<T>(n * d, 10, round.input);
  for (auto _ : state) benchmark::DoNotOptimize(exact_attention(q, k, v, policy, AttentionOptions{}).z.data());
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  // Scores q·k (2d) and weights·[v 1] (2(d+1)) over the n(n+1)/2 causal pairs.
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(n * (n + 1) / 2 * (4 * d + 2)),
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(ExactAttention<float>)->Args({4096, 64})->Args({4096, 8})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(ExactAttention<double>)->Args({4096, 64})->Unit(benchmark::kMillisecond)->UseRealTime();

// One decode step of exact attention over a KV cache of n tokens (one head).
void ExactDecode(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)), d = static_cast<std::size_t>(state.range(1));
  const PrecisionPolicy policy = precision_policy("fp32");
  const PolicyRounders<float> round(policy);
  ExactDecoder<float> decoder(1, d, d, n + 1, policy, AttentionOptions{});
  const std::vector<float> kv = random_values<float>(n * d, 11, round.input);
  decoder.append(kv.data(), kv.data(), n);
  const std::vector<float> x = random_values<float>(d, 12, round.input);
  std::vector<float> y(d), z(1);
  for (auto _ : state) {
    decoder.truncate(n);
    decoder.step(x.data(), x.data(), x.data(), y.data(), z.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * 2 * d * sizeof(float)));
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(conventional_flops_per_token(d, d, n)),
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(ExactDecode)->ArgsProduct({{1 << 16, 1 << 22}, {8, 64}})->UseRealTime();

// Bounds: Eigen's GEMM on N×N squares and memcpy on a buffer larger than the caches.
template <class T>
void Gemm(benchmark::State& state) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const auto N = static_cast<Eigen::Index>(state.range(0));
  Matrix a = Matrix::Constant(N, N, T(0.5)), b = Matrix::Constant(N, N, T(0.25)), c(N, N);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(N) * static_cast<double>(N) * static_cast<double>(N),
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(Gemm<float>)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Gemm<double>)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

void Copy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<char> a(bytes, 1), b(bytes, 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  // Read and written.
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * bytes));
}
BENCHMARK(Copy)->Arg(std::int64_t{256} << 20)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
