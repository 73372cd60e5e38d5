/* Exercises: constructors (linking-section init functions, run by __wasm_call_ctors) at two
 * priorities; they call an extern so -O2 cannot fold them away.
 * Check: ctor_check() returns 17 once the constructors have run in priority order
 * (priority 101 sets 1, the default one then makes it 1 * 10 + 7), 0 if they have not run.
 * The host sees host_register(1) and then host_register(7). */

extern void host_register(int value);

static int ctor_state;

__attribute__((constructor(101))) static void ctor_early(void) {
    ctor_state = 1;
    host_register(1);
}

__attribute__((constructor)) static void ctor_late(void) {
    ctor_state = ctor_state * 10 + 7;
    host_register(7);
}

int ctor_check(void) { return ctor_state; }
