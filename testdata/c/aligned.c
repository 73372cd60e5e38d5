/* Exercises: over-aligned data (1024 bytes), initialised and zero, so the segment layout and
 * the dylink.0 memory alignment must honour it and the loader must allocate accordingly.
 * Check: aligned_check() returns 1 if both objects sit on 1024-byte boundaries and
 * aligned_buf holds {1, 2, 3, 4}, else 0. aligned_addr() returns &aligned_buf. */

#include <stdint.h>

_Alignas(1024) int aligned_buf[4] = {1, 2, 3, 4};
_Alignas(1024) static char aligned_zero[16];

void *aligned_addr(void) { return aligned_buf; }

int aligned_check(void) {
    /* volatile: the compiler knows the declared alignment and would fold the test to 1. */
    volatile uintptr_t a = (uintptr_t)aligned_buf;
    volatile uintptr_t z = (uintptr_t)aligned_zero;
    return a % 1024 == 0 && z % 1024 == 0 && aligned_buf[0] == 1 && aligned_buf[3] == 4 &&
           aligned_zero[15] == 0;
}
