/* The benchmark of issue 6 (benches/benches/pic_rewrite.rs): a hot loop that touches globals
 * and calls through function pointers, compiled with and without -fPIC. Everything has
 * default visibility so that the PIC build reaches it through GOT.mem/GOT.func entries, as a
 * side module's exported data is reached; the non-PIC build's absolute addresses are what
 * pymode-ld rewrites to __memory_base/__table_base + offset. */

typedef int (*op_fn)(int, int);

int op_add(int a, int b) { return a + b; }
int op_sub(int a, int b) { return a - b; }
int op_mix(int a, int b) { return (a ^ b) * 3 + 1; }
int op_rot(int a, int b) { return (int)(((unsigned)a << 5) | ((unsigned)a >> 27)) + b; }

/* Not const and not static: the compiler may not fold the calls into direct ones. */
op_fn ops[4] = {op_add, op_sub, op_mix, op_rot};
int table[256];
int counter;

void hot_reset(void) {
    for (int i = 0; i < 256; i++)
        table[i] = i * 2654435761u;
    counter = 0;
}

int hot_loop(int n) {
    int acc = 0;
    for (int i = 0; i < n; i++) {
        acc = ops[(i ^ acc) & 3](acc, table[i & 255]);
        table[(i * 7) & 255] = acc;
        counter += 1;
    }
    return acc ^ counter;
}
