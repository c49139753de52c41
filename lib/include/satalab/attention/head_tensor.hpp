#pragma once
// HeadTensor moved to satalab/tensor.hpp (one tensor type for io, workloads
// and attention); this header forwards to it.
#include "satalab/tensor.hpp"
