/* Exercises: a global pointer initialised with the address of a string literal, i.e. a
 * pointer-sized data relocation (MEMORY_ADDR_I32 into .rodata) that __wasm_apply_data_relocs
 * must rebase under PIC; `greeting` itself is default-visibility data (GOT.mem under PIC).
 * Check: data_pointer_check() returns 1 if greeting points at "hello", else 0. */

const char *greeting = "hello";

const char *get_greeting(void) { return greeting; }

int data_pointer_check(void) {
    const char *g = get_greeting();
    return g[0] == 'h' && g[1] == 'e' && g[2] == 'l' && g[3] == 'l' && g[4] == 'o' && g[5] == 0;
}
