// The ~110M-parameter random checkpoint the CPU benchmarks share: 12 layers of
// hidden 768 / MLP 2048, 12 heads (4 KV heads), vocab 16000, fp16, int4 g128
// when quantized. Big enough that its weights do not fit the caches.
#pragma once

#include <string>

#include "model/synth.h"

namespace tandem::bench {

inline SynthOptions synth_100m_options(const std::string& quant) {
  SynthOptions o;
  o.vocab_size = 16000;
  o.hidden_size = 768;
  o.intermediate_size = 2048;
  o.num_layers = 12;
  o.num_heads = 12;
  o.num_kv_heads = 4;
  o.dtype = DType::kF16;
  o.quant = quant;
  o.group_size = 128;
  return o;
}

}  // namespace tandem::bench
