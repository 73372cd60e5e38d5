/* Exercises: calls to functions the module does not define (env.* function imports, resolved
 * by the loader against the main module), and the address of an extern function taken in
 * code (GOT.func under PIC).
 * Check: extern_calls_check() returns host_add(host_mul(3, 4), 5), i.e. 17 with a host
 * whose host_add adds and host_mul multiplies; it also calls host_log("extern_calls") once. */

extern int host_add(int a, int b);
extern int host_mul(int a, int b);
extern void host_log(const char *msg);

typedef int (*binop)(int, int);

binop extern_calls_get_add(void) { return host_add; }

int extern_calls_check(void) {
    host_log("extern_calls");
    return host_add(host_mul(3, 4), 5);
}
