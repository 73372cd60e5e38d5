/* Functions of mixed C signatures, called through the libffi layer (abi/c/pymode_ffi.c) by
 * ffi_driver.c and, as a side module `libcallees.so`, through ctypes by the wasm CPython
 * (loader/tests/all/ctypes.rs). */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

struct point { int x, y; };
struct big { int a, b, c; double d; };
struct wrap { double d; };
struct tiny { char c; };

int add_i(int a, int b) { return a + b; }
long long mul_ll(long long a, int b) { return a * b; }
double mix(double a, float b, int c) { return a * b + c; }
float half(float x) { return x / 2.0f; }
signed char neg8(signed char x) { return (signed char)-x; }
unsigned short twice16(unsigned short x) { return (unsigned short)(x * 2); }
unsigned long long big_u64(void) { return 0xF000000000000001ULL; }
char *upper(char *s) {
    for (char *p = s; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    return s;
}
int sum_point(const struct point *p) { return p->x + p->y; }
void scale_point(struct point *p, int k) { p->x *= k; p->y *= k; }
/* By value: passed as a pointer to the caller's copy; writing to it must not reach the
 * caller's struct. */
double sum_big(struct big b) {
    double r = b.a + b.b + b.c + b.d;
    b.a = 1000;
    return r;
}
struct big make_big(int a, double d) { struct big b = {a, a + 1, a + 2, d}; return b; }
struct wrap twice_wrap(struct wrap w) { w.d *= 2; return w; }
struct tiny next_tiny(struct tiny t) { t.c++; return t; }
long double ld_add(long double a, long double b) { return a + b; }
int sum_var(int n, ...) {
    va_list ap;
    va_start(ap, n);
    int s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, int);
    va_end(ap);
    return s;
}
double sum_mixed_var(const char *kinds, ...) {
    va_list ap;
    va_start(ap, kinds);
    double s = 0;
    for (const char *k = kinds; *k; k++) {
        if (*k == 'i') s += va_arg(ap, int);
        else if (*k == 'l') s += (double)va_arg(ap, long long);
        else if (*k == 'd') s += va_arg(ap, double);
        else if (*k == 'p') { struct point *p = va_arg(ap, struct point *); s += p->x * 100 + p->y; }
    }
    va_end(ap);
    return s;
}
static int counter;
void bump(void) { counter++; }
int get_counter(void) { return counter; }
int boom(int x) {
    if (x > 0) __builtin_trap();
    return x;
}
/* Calls a C callback: for closures with f64 and i64 parameters. */
double apply(double (*f)(double, long long), double x, long long y) { return f(x, y) + 1; }
int apply_int(int (*f)(int), int x) { return f(x); }
