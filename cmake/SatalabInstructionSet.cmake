# The instruction set satalab is compiled for (docs/architecture.md, "Build and
# provenance").
#
# Default: x86-64-v3 (AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE), which every x86-64
# server and desktop CPU since Intel Haswell (2013) and AMD Zen (2017) runs, so
# a binary built on one node of a cluster runs on every other. The AVX-512
# paths (libmvec's 8-wide exp) are chosen at run time where the CPU has them.
# SATALAB_NATIVE (the `native` preset) compiles for the building machine alone.
#
# Sets:
#   SATALAB_ARCH_FLAGS           compile options selecting the instruction set
#   SATALAB_ISA                  its name as recorded in BuildInfo::isa
#   SATALAB_REQUIRED_CPU_FEATURES  __builtin_cpu_supports() names the compiled
#                                code may use (checked when a binary starts)
option(SATALAB_NATIVE "Compile for the building machine's instruction set (-march=native; the binary may not run elsewhere)" OFF)
set(SATALAB_BASELINE_ARCH "x86-64-v3" CACHE STRING
    "Instruction set of the portable build (-march=...; x86-64-v3 = AVX2 + FMA, x86-64-v2 = SSE4.2)")

set(SATALAB_ARCH_FLAGS "")
set(SATALAB_REQUIRED_CPU_FEATURES "")
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$"
   OR NOT CMAKE_CXX_COMPILER_ID MATCHES "^(GNU|Clang)$")
  # Elsewhere the compiler's default target; no start-up check.
  set(SATALAB_ISA "${CMAKE_SYSTEM_PROCESSOR}")
  return()
endif()

if(SATALAB_NATIVE)
  set(SATALAB_ARCH_FLAGS -march=native)
  # Which CPU -march=native resolved to, e.g. "native (rocketlake)".
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -march=native -Q --help=target
                  OUTPUT_VARIABLE satalab_target_help ERROR_QUIET)
  if(satalab_target_help MATCHES "-march=[ \t]+([A-Za-z0-9_.-]+)")
    set(SATALAB_ISA "native (${CMAKE_MATCH_1})")
  else()
    set(SATALAB_ISA "native")
  endif()
else()
  set(SATALAB_ARCH_FLAGS -march=${SATALAB_BASELINE_ARCH})
  set(SATALAB_ISA "${SATALAB_BASELINE_ARCH}")
endif()

# The features the compiler may use under these flags (its predefined macros),
# as the names __builtin_cpu_supports() knows.
execute_process(COMMAND ${CMAKE_CXX_COMPILER} ${SATALAB_ARCH_FLAGS} -dM -E -x c++ /dev/null
                OUTPUT_VARIABLE satalab_macros RESULT_VARIABLE satalab_macros_status ERROR_VARIABLE satalab_macros_error)
if(NOT satalab_macros_status EQUAL 0)
  message(FATAL_ERROR "The compiler refuses '${SATALAB_ARCH_FLAGS}': ${satalab_macros_error}"
                      "(set SATALAB_BASELINE_ARCH to an instruction set it knows, e.g. x86-64-v2)")
endif()
foreach(pair
    SSE3:sse3 SSSE3:ssse3 SSE4_1:sse4.1 SSE4_2:sse4.2 POPCNT:popcnt AVX:avx AVX2:avx2 FMA:fma F16C:f16c
    BMI:bmi BMI2:bmi2 LZCNT:lzcnt MOVBE:movbe AES:aes PCLMUL:pclmul GFNI:gfni VPCLMULQDQ:vpclmulqdq
    AVXVNNI:avxvnni AVX512F:avx512f AVX512CD:avx512cd AVX512BW:avx512bw AVX512DQ:avx512dq AVX512VL:avx512vl
    AVX512IFMA:avx512ifma AVX512VBMI:avx512vbmi AVX512VBMI2:avx512vbmi2 AVX512VNNI:avx512vnni
    AVX512BITALG:avx512bitalg AVX512VPOPCNTDQ:avx512vpopcntdq AVX512BF16:avx512bf16 AVX512FP16:avx512fp16)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 macro)
  list(GET pair 1 feature)
  if(satalab_macros MATCHES "#define __${macro}__ 1")
    list(APPEND SATALAB_REQUIRED_CPU_FEATURES ${feature})
  endif()
endforeach()
