/* Exercises: large zero-initialised data (.bss): the module's mem_info.size includes it and
 * the loader must hand out zeroed memory for it.
 * Check: bss_check() returns 1 if every element of both arrays is zero, else 0.
 * bss_fill(v) stores v everywhere, after which bss_sum() returns 65536 * v + 100000 * (char)v. */

int bss_big[65536];
static char bss_bytes[100000];

void bss_fill(int v) {
    for (int i = 0; i < 65536; i++) bss_big[i] = v;
    for (int i = 0; i < 100000; i++) bss_bytes[i] = (char)v;
}

int bss_sum(void) {
    int s = 0;
    for (int i = 0; i < 65536; i++) s += bss_big[i];
    for (int i = 0; i < 100000; i++) s += bss_bytes[i];
    return s;
}

int bss_check(void) {
    for (int i = 0; i < 65536; i++) if (bss_big[i]) return 0;
    for (int i = 0; i < 100000; i++) if (bss_bytes[i]) return 0;
    return 1;
}
