// Concatenation of linear layers that read the same input (q/k/v, gate/up) along
// their outputs, so a backend that prefers it (Backend::prefers_fused_linears)
// runs one wide GEMV instead of several narrow ones. Works on the host views of
// the checkpoint; the result owns copies of the concatenated tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace tandem {

struct ConcatLinearHost {
  LinearWeight weight;                          // views into `storage`
  std::vector<std::vector<uint8_t>> storage;    // the concatenated tensors
};

// Whether `parts` can be concatenated along N: same format, K, group size, zero
// offset, tensor dtypes, all or none with a bias, GPTQ g_idx identical. When not,
// *why says which rule failed (the caller then keeps the layers separate).
bool can_concat_linears(const std::vector<const LinearWeight*>& parts, std::string* why);

// The layer y = x · [W_0 | W_1 | ...]^T: outputs of part i are columns
// [n_0 + ... + n_(i-1), +n_i). Requires can_concat_linears(parts).
std::unique_ptr<ConcatLinearHost> concat_linears(const std::vector<const LinearWeight*>& parts,
                                                 const std::string& name);

}  // namespace tandem
