/* Exercises: a variadic function defined here (va_list lives on the shadow stack, so it uses
 * __stack_pointer) and a call to an extern variadic function (the varargs buffer is passed
 * as a pointer into the caller's stack frame).
 * Check: variadic_check() returns 10 (sum_ints(4, 1, 2, 3, 4)); it also calls
 * host_printf("%d %s\n", 5, "five") once. */

#include <stdarg.h>

extern int host_printf(const char *fmt, ...);

int sum_ints(int n, ...) {
    va_list ap;
    va_start(ap, n);
    int s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, int);
    va_end(ap);
    return s;
}

int variadic_check(void) {
    host_printf("%d %s\n", 5, "five");
    return sum_ints(4, 1, 2, 3, 4);
}
