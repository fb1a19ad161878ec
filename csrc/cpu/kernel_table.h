// The interface between the dispatcher-facing CPU code (max_pool.cpp, normal
// compiler flags, uses ATen) and the per-ISA kernel builds (isa_*.cpp, special
// flags, no torch headers: inline torch code compiled with AVX-512 flags could
// otherwise be picked by the linker for every caller and fault on older CPUs).
#pragma once
#include <cstdint>

#include "../pool_geometry.h"

namespace fastpool::cpu {

// Storage types. Layout-compatible with c10::Half / c10::BFloat16; the kernels
// convert with their own code so they need no torch headers.
struct fp16_t { uint16_t bits; };
struct bf16_t { uint16_t bits; };

enum class DType : int { f32, f64, f16, bf16, u8, i8, i16, i32, i64, count };
enum class Layout : int { planar, channels_last, count };  // NC(D)HW / N(D)HWC

constexpr int kNumDTypes = static_cast<int>(DType::count);
constexpr int kNumLayouts = static_cast<int>(Layout::count);

// What a forward writes for each output's argmax, and what a backward reads:
//   none     nothing (inference);
//   flat     PyTorch's int64 index, flattened over the (d, h, w) plane;
//   tap_u8,  the argmax's tap within its window, in kernel order (kd, kh, kw)
//   tap_i32  with the largest window as the radix for adaptive windows; the
//            type's all-ones value (kNoTap) when the window has no in-bounds
//            tap. Training saves these: 1 byte per output for windows of up
//            to 255 taps, 4 above that.
enum class Argmax : int { none, flat, tap_u8, tap_i32, count };
constexpr int kNumArgmax = static_cast<int>(Argmax::count);

// Forward over a range of work items: planar = output rows (plane, od, oh);
// channels_last = output positions (n, od, oh, ow), all channels each.
// argmax: null for Argmax::none, else the output-shaped array of that kind.
using ForwardFn = void (*)(const PoolGeometry& g, const void* input, void* output, void* argmax, int64_t begin,
                           int64_t end);

// Backward over a range of tasks: planar = planes (n, c); channels_last =
// (image n, band of input rows), `bands` bands per image. Each task owns the
// grad_input elements it writes, so results do not depend on threading.
// An argmax outside the input plane adds nothing (see max_pool_kernels.h).
using BackwardFn = void (*)(const PoolGeometry& g, const void* grad_output, const void* argmax, void* grad_input,
                            int64_t bands, int64_t begin, int64_t end);

// fractional_max_pool{2,3}d (fractional_kernels.h): sizes normalised to
// (T, H, W) (2-d: T = 1), and each plane's window starts, tabled by the
// caller: out[0] + out[1] + out[2] per plane (T, then H, then W).
struct FractionalPlan {
  int64_t in[3], out[3], k[3];
  const int32_t* starts;
  int64_t first_plane;  // the plane the kernel's input pointer starts at (0: all planes)
};

// Forward over a range of output rows (plane, ot, oh), rows numbered
// (plane * out[0] + ot) * out[1] + oh, writing values and the argmax of the
// kernel's kind (Argmax; taps numbered (t * k[1] + h) * k[2] + w, a window
// without taps tap 0: torch's index there is the window's start).
using FractionalForwardFn = void (*)(const FractionalPlan& p, const void* input, void* output, void* argmax,
                                     int64_t begin, int64_t end);

// max_unpool{2,3}d's dense path (unpool_kernels.h): each input cell (t, h, w)
// owns the output block [t*s[0], +s[0]) x [h*s[1], +s[1]) x [w*s[2], +s[2]);
// sizes normalised to (T, H, W). Elements sit at (image * plane + position) *
// channels + channel: planar tensors are images of one channel (channels == 1),
// channels-last ones batch entries of `channels`.
struct UnpoolBlocks {
  int64_t in[3], out[3], s[3];
  int64_t channels;
};

// Forward and backward over input rows (image, t, h) in [begin, end): the
// forward writes their blocks' output rows (and the rows no block reaches),
// the backward their planar grad_input rows. false: an index lies
// outside its cell's block (the rows written so far are to be redone).
using UnpoolForwardFn = bool (*)(const UnpoolBlocks& b, const void* values, const int64_t* indices, void* output,
                                 int64_t begin, int64_t end);
using UnpoolBackwardFn = bool (*)(const UnpoolBlocks& b, const void* grad_output, const int64_t* indices,
                                  void* grad_input, int64_t begin, int64_t end);
constexpr int kNumUnpoolWords = 3;  // 2-, 4-, 8-byte words: the values are moved, never computed on

struct KernelTable {
  const char* isa;
  int vector_bits;  // width of the float SIMD path (0: scalar)
  ForwardFn forward[kNumLayouts][kNumDTypes][kNumArgmax];
  BackwardFn backward[kNumLayouts][kNumDTypes][kNumArgmax];  // [..][Argmax::none] unused
  FractionalForwardFn fractional_forward[kNumDTypes][kNumArgmax];  // floating types only
  UnpoolForwardFn unpool_forward[kNumLayouts][kNumUnpoolWords];
  UnpoolBackwardFn unpool_backward[kNumLayouts][kNumUnpoolWords];
};

const KernelTable& kernels_avx512();
const KernelTable& kernels_avx2();
const KernelTable& kernels_portable();

}  // namespace fastpool::cpu
