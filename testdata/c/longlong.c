/* Exercises: i64 and f64 in signatures, of exported functions and of extern imports
 * (host_ll: i64 -> i64, host_dbl: f64 -> f64), so the loader's signature checks see them.
 * Check: longlong_check() returns 1 if the local 64-bit and double arithmetic is right.
 * longlong_via_host(x) returns host_ll(x) + 1; double_via_host(x) returns host_dbl(x) * 2. */

extern long long host_ll(long long x);
extern double host_dbl(double x);

long long ll_mul(long long a, long long b) { return a * b; }

double dbl_scale(double x, double k) { return x * k; }

long long ll_from_double(double d) { return (long long)d; }

long long longlong_via_host(long long x) { return host_ll(x) + 1; }

double double_via_host(double x) { return host_dbl(x) * 2.0; }

int longlong_check(void) {
    return ll_mul(1LL << 33, 3) == (3LL << 33) && dbl_scale(1.5, 4.0) == 6.0 &&
           ll_from_double(-2.5) == -2;
}
