#pragma once
// Kernel recipes (docs/architecture.md, Kernels): exact softmax attention as a
// real kernel rounds it, rather than as a precision policy's three formats do.
// A recipe is data, a list of which value is rounded where (RecipeSteps),
// and one engine runs every recipe (src/attention/recipe.cpp, on the
// quadratic engine's blocked_rows). The carrier is double; every value the
// kernel keeps in fp32 is rounded to fp32 explicitly, and a product the
// kernel accumulates in fp32 is computed exactly (double) and rounded once
// into fp32 per key tile (a tensor core's fp32 accumulation differs from this
// only in the order of the fp32 additions: ties of the last fp32 bit).
//
// The recipes (names as `--recipe` and the sweep key `recipe` spell them):
//
//  flash2-bf16, flash2-fp16 (FlashAttention-2's forward kernel):
//    Q, K, V rounded once into bf16 (fp16) from the float64 inputs.
//    Per key tile of Bc keys: S = Q·Kᵀ exact, rounded to fp32 and kept in fp32.
//    Running max m (fp32, of the raw S) per row; with c₂ = fl32(log2(e)/c):
//    x = fl32(S·c₂ − fl32(m·c₂)) (FA2's fused multiply-add), p = fl32(2^x).
//    The row sum l accumulates the fp32 p (before rounding: FA2 sums the fp32
//    scores), P = p rounded to bf16 (fp16) for P·V.
//    A new max rescales the accumulator and l by fl32(2^fl32(fl32(m_old − m_new)·c₂)), in fp32.
//    acc = fl32(acc + fl32(P·V)) per key tile (P·V exact, then fp32).
//    Output y = acc · fl32(1/l) in fp32, rounded to bf16 (fp16).
//  flash2-bf16-acc16 (not a real kernel: the flash algorithm with every
//    intermediate in bf16, as an emulation running it on bf16 tensors
//    computes): as flash2-bf16 but S rounded to bf16, and the accumulator
//    and l rounded to bf16 after every update (l: the tile's fp32 sum added
//    once per key tile; the accumulator: rescaled, then the tile's P·V added).
//  sdpa-math-bf16, sdpa-math-fp16 (PyTorch's materialised math path,
//    softmax(q @ kᵀ · scale) @ v in torch.bfloat16 / float16 on the CPU):
//    Q, K, V in bf16 (fp16); S = Q·Kᵀ exact rounded once to bf16 (fp16);
//    the scale 1/c rounded to bf16 (fp16) (torch casts the Python scalar to
//    the tensor's type) and s = fl16(fl32(S · scale)); softmax over the whole
//    row in fp32: m = max s, e = fl32(exp(s − m)), Σ e in fp32 (sequential),
//    P = fl16(fl32(e / Σ e)); y = P·V exact rounded once to bf16 (fp16).
//    All keys of a row are one tile (the tile sizes are not read).
//  sdpa-math-fp8 (FlashAttention-3's "baseline FP8 attention"): Q, K, V in
//    e4m3 with one absmax scale per head (fp32, amax/448); S = fl16(fl32(codes
//    product) · fl32(s_q·s_k)) i.e. kept in fp16; softmax as sdpa-math in fp32,
//    P in fp16; y = P·V (V dequantised, exact) rounded to fp16.
//  flash3-fp8, flash3-fp8-hadamard (FlashAttention-3's FP8 forward):
//    Q in e4m3 with one scale per block of Br tokens, K and V per block of Bc
//    tokens (per head, the block's absmax / 448, in fp32); the -hadamard
//    variant first multiplies Q and K (float64) by the same random orthogonal
//    matrix H·D/√d (D random signs from the seed, H the Walsh-Hadamard
//    matrix; d_key a power of two): QKᵀ is unchanged, outliers are spread
//    over all channels ("incoherent processing").
//    S = fl32(fl32(codes product) · fl32(s_q·s_k)); softmax as flash2 with
//    FA3's fp8 offset: x = fl32(S·c₂ − fl32(fl32(m·c₂) − 8)), so p ∈ [0, 256]
//    (l scaled alike); P = p rounded to e4m3; per key tile
//    acc = fl32(acc + fl32(fl32(P·V_codes) · s_v)); y as flash2, rounded to fp16.
//  sage-int8 (SageAttention v1): Q, K, V rounded to fp16; K smoothed:
//    k − fl16(mean over all tokens of k) in fp16 (softmax is unchanged: every
//    score of a row shifts by the same q·mean); Q int8 per block of Br
//    tokens, K per block of Bc tokens (scale fl32(absmax/127), codes rounded
//    half away from zero); S = fl32(int product · fl32(s_q·s_k)); softmax as
//    flash2; P = p rounded to fp16, V fp16, P·V accumulated in fp32; y in fp16.
//
// Tiles: Br (tile_rows) query rows, Bc (tile_cols) keys, default 128 × 64.
// Only the quantisation blocks read Br; Bc sets where the running max is
// updated and the accumulator rescaled. A tile larger than the sequence is
// one tile of the whole sequence (then one block scale per head).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/numeric/format.hpp"

namespace satalab {

enum class RecipeKind {
  none,  // the precision policy's own rounding (no recipe)
  flash2_bf16,
  flash2_fp16,
  flash2_bf16_acc16,
  sdpa_math_bf16,
  sdpa_math_fp16,
  sdpa_math_fp8,
  flash3_fp8,
  flash3_fp8_hadamard,
  sage_int8,
};

struct KernelRecipe {
  RecipeKind kind = RecipeKind::none;
  std::string name = "none";
  std::size_t tile_rows = 128;  // Br
  std::size_t tile_cols = 64;   // Bc
  std::uint64_t seed = 1;       // flash3-fp8-hadamard: the random signs D
  static constexpr std::size_t kDefaultTileRows = 128, kDefaultTileCols = 64;
};

// How Q, K or V are stored.
enum class RecipeStorage {
  cast,          // rounded once into a format, no scale
  e4m3_block,    // e4m3 codes, one fp32 absmax/448 scale per block of tokens (per head)
  e4m3_head,     // e4m3 codes, one fp32 absmax/448 scale per head
  int8_block,    // int8 codes, one fp32 absmax/127 scale per block of tokens (per head)
};

// Which value is rounded where (the list above, as data).
struct RecipeSteps {
  RecipeKind kind;
  const char* name;
  RecipeStorage q_storage, k_storage, v_storage;
  Format qkv_cast;         // cast: the storage format; scaled: the format inputs are cast to first (fp64: none)
  bool hadamard;           // Q and K times H·D/√d before storage
  bool smooth_k;           // K minus its mean over tokens (in qkv_cast) before storage
  bool materialised;       // a whole row of scores at once (sdpa-math); else online per key tile (flash)
  Format score;            // S as stored (fp32 flash, bf16/fp16 sdpa)
  bool round_scale;        // sdpa-math: the scale 1/c rounded into `score` and applied in fp32
  Format p;                // P before P·V
  int p_offset;            // p = 2^(x + p_offset): FA3's fp8 offset 8, else 0
  Format out;              // y
  RecipeKind plain;        // the plain implementation at the same precision (FlashAttention's acceptance rule)
  Format acc = fp32();     // online: the accumulator and the row sum l (bf16 for flash2-bf16-acc16)
};

// "none" and the recipes' names; unknown names throw InvalidArgument listing them.
KernelRecipe kernel_recipe(std::string_view name);
std::vector<std::string> recipe_names();
std::string_view recipe_name(RecipeKind kind);
// The steps of a recipe (not of none).
const RecipeSteps& recipe_steps(RecipeKind kind);

// What a recipe needs of the inputs: flash3-fp8-hadamard a d_key that is a
// power of two. Throws InvalidArgument naming the recipe and d_key.
void check_recipe_shape(const KernelRecipe& recipe, std::size_t d_key);

// Bytes of the KV cache the recipe stores for one sequence (K and V in their
// storage formats plus their fp32 block scales and, for sage-int8, the fp32
// key mean).
std::uint64_t recipe_kv_cache_bytes(const KernelRecipe& recipe, std::uint64_t heads, std::uint64_t n_tokens,
                                    std::uint64_t d_key, std::uint64_t d_value);

}  // namespace satalab
