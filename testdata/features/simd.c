/* Sums an array four lanes at a time (v128 loads, i32x4 adds): simd_check() returns 136.
 * Needs -msimd128, so it is not one of the fixtures in testdata/c, which build without it. */
#include <wasm_simd128.h>

static int data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

__attribute__((noinline)) int simd_sum(const int *p, int n) {
    v128_t acc = wasm_i32x4_splat(0);
    for (int i = 0; i + 4 <= n; i += 4) acc = wasm_i32x4_add(acc, wasm_v128_load(p + i));
    return wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1)
         + wasm_i32x4_extract_lane(acc, 2) + wasm_i32x4_extract_lane(acc, 3);
}

int simd_check(void) { return simd_sum(data, 16); }
