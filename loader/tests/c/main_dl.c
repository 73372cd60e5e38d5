/* A C main module for the loader tests, built with zig (wasi-libc, dlmalloc) and linked with
 * --export-dynamic --growable-table --export-table. It loads the fixture side modules from
 * /lib through the abi/c dlfcn shim and checks their behaviour; every check prints one line
 * "ok NAME" or "FAIL NAME ...", and the exit code is the number of failures. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the fixtures import from the main module. */
int host_add(int a, int b) { return a + b; }
int host_mul(int a, int b) { return a * b; }
static int log_count;
void host_log(const char *msg) { log_count++; printf("log %s\n", msg); }
static int registered;
void host_register(int v) { registered = registered * 10 + v; }
void host_unregister(int v) { printf("unregister %d\n", v); fflush(stdout); }
int host_counter;
int host_array[4] = {1, 2, 3, 4};
long long host_ll(long long x) { return x * 2; }
double host_dbl(double x) { return x + 0.5; }
static int printf_seen;
int host_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    printf_seen = 1;
    return n;
}

static int failures;
#define CHECK(name, cond)                                                              \
    do {                                                                               \
        if (cond) printf("ok %s\n", name);                                             \
        else { printf("FAIL %s (line %d)\n", name, __LINE__); failures++; }            \
    } while (0)

static void *open_lib(const char *path, int flags) {
    void *h = dlopen(path, flags);
    if (!h) { printf("FAIL dlopen %s: %s\n", path, dlerror()); failures++; }
    return h;
}

typedef int (*int_fn)(void);
typedef int (*binop)(int, int);
typedef binop (*get_binop)(void);

static int call_int(void *h, const char *name) {
    int_fn f = (int_fn)dlsym(h, name);
    if (!f) { printf("FAIL dlsym %s: %s\n", name, dlerror()); failures++; return -12345; }
    return f();
}

int main(void) {
    /* A dirty heap before anything loads: .bss must still be zero. */
    char *dirty = malloc(800000);
    memset(dirty, 0x5a, 800000);
    free(dirty);

    void *bss = open_lib("/lib/bss.so", RTLD_NOW);
    if (bss) CHECK("bss_zeroed", call_int(bss, "bss_check") == 1);

    void *calls = open_lib("/lib/extern_calls.so", RTLD_NOW);
    void *cmp = open_lib("/lib/side_cmp.so", RTLD_NOW);
    if (calls && cmp) {
        CHECK("extern_calls", call_int(calls, "extern_calls_check") == 17 && log_count == 1);
        binop a1 = ((get_binop)dlsym(calls, "extern_calls_get_add"))();
        binop a2 = ((get_binop)dlsym(cmp, "side_get_add"))();
        CHECK("fnptr_identity_main_and_two_sides", a1 == host_add && a2 == host_add);
        CHECK("fnptr_identity_dlsym_default", dlsym(RTLD_DEFAULT, "host_add") == (void *)host_add);
        CHECK("fnptr_call", a1(20, 22) == 42);

        /* qsort from the main module calling a side-module comparator, both ways. */
        typedef int (*cmp_fn)(const void *, const void *);
        cmp_fn c = ((cmp_fn (*)(void))dlsym(cmp, "side_get_cmp"))();
        CHECK("cmp_identity", c == (cmp_fn)dlsym(cmp, "cmp_desc"));
        int v[6] = {3, 1, 4, 1, 5, 9};
        qsort(v, 6, sizeof v[0], c);
        CHECK("qsort_main_with_side_cmp", v[0] == 9 && v[1] == 5 && v[5] == 1);
        int w[4] = {2, 7, 1, 8};
        ((void (*)(int *, int))dlsym(cmp, "side_sort_desc"))(w, 4);
        CHECK("qsort_from_side", w[0] == 8 && w[3] == 1);
    }

    void *ctor = open_lib("/lib/ctor.so", RTLD_NOW);
    if (ctor) {
        CHECK("ctor_ran_in_order", call_int(ctor, "ctor_check") == 17 && registered == 17);
        void *again = open_lib("/lib/./ctor.so", RTLD_NOW);
        CHECK("ctor_once_same_handle", again == ctor && registered == 17);
    }

    void *data = open_lib("/lib/data_pointer.so", RTLD_NOW);
    if (data) {
        CHECK("data_pointer", call_int(data, "data_pointer_check") == 1);
        const char **g = (const char **)dlsym(data, "greeting");
        CHECK("data_symbol_address", g && strcmp(*g, "hello") == 0);
    }

    void *ed = open_lib("/lib/extern_data.so", RTLD_NOW | RTLD_LOCAL);
    if (ed) {
        CHECK("extern_data", call_int(ed, "extern_data_check") == 11 && host_counter == 11);
        CHECK("rtld_local_hidden", dlsym(RTLD_DEFAULT, "extern_data_check") == NULL);
        dlerror();
    }

    void *mt = open_lib("/lib/method_table.so", RTLD_NOW | RTLD_GLOBAL);
    if (mt) {
        CHECK("method_table", call_int(mt, "method_table_check") == 15);
        CHECK("rtld_global_visible", dlsym(RTLD_DEFAULT, "method_table_check") == dlsym(mt, "method_table_check"));
    }

    void *sfe = open_lib("/lib/static_fn_escape.so", RTLD_NOW);
    if (sfe) CHECK("static_fn_escape", call_int(sfe, "static_fn_escape_check") == 1001);

    void *weak = open_lib("/lib/weak.so", RTLD_NOW);
    if (weak) CHECK("weak_undefined_is_null", call_int(weak, "weak_check") == 42 && call_int(weak, "has_maybe") == 0);

    void *var = open_lib("/lib/variadic.so", RTLD_NOW);
    if (var) CHECK("variadic", call_int(var, "variadic_check") == 10 && printf_seen);

    void *ll = open_lib("/lib/longlong.so", RTLD_NOW);
    if (ll) {
        long long (*via)(long long) = (long long (*)(long long))dlsym(ll, "longlong_via_host");
        double (*dv)(double) = (double (*)(double))dlsym(ll, "double_via_host");
        CHECK("i64_f64_across", via(1LL << 40) == (1LL << 41) + 1 && dv(1.0) == 3.0 && call_int(ll, "longlong_check") == 1);
    }

    /* NEEDED chain of three (built by pymode-ld): chain/c1.so needs libc2.so via RUNTIME_PATH
     * $ORIGIN/deps, which needs libc3.so via $ORIGIN. */
    void *chain = open_lib("/lib/chain/c1.so", RTLD_NOW);
    if (chain) {
        CHECK("needed_chain_of_three", call_int(chain, "c1") == 321);
        CHECK("needed_searched_through_handle", dlsym(chain, "c3") != NULL);
        CHECK("needed_not_global", dlsym(RTLD_DEFAULT, "c3") == NULL);
        dlerror();
    }

    void *al = open_lib("/lib/aligned.so", RTLD_NOW);
    if (al) CHECK("aligned_1024", call_int(al, "aligned_check") == 1);

    CHECK("missing_library_fails", dlopen("/lib/nothere.so", RTLD_NOW) == NULL);
    const char *err = dlerror();
    CHECK("dlerror_names_library", err && strstr(err, "nothere.so") != NULL);
    CHECK("escape_refused", dlopen("/lib/../../etc/passwd", RTLD_NOW) == NULL);
    dlerror();

    /* Open/close a library many times: the heap top (sbrk) stops moving after warm-up. */
    void *top_warm = NULL;
    for (int i = 0; i < 300; i++) {
        void *h = dlopen("/lib/static_fn_escape_copy.so", RTLD_NOW);
        if (!h) { printf("FAIL reopen %d: %s\n", i, dlerror()); failures++; break; }
        if (call_int(h, "static_fn_escape_check") != 1001) { printf("FAIL reopen call %d\n", i); failures++; break; }
        dlclose(h);
        if (i == 10) top_warm = sbrk(0);
    }
    CHECK("open_close_heap_flat", top_warm != NULL && sbrk(0) == top_warm);

    /* The destructor registered with __cxa_atexit runs at exit ("unregister 9"). */
    void *dtor = open_lib("/lib/dtor.so", RTLD_NOW);
    if (dtor) CHECK("dtor_registered", call_int(dtor, "dtor_check") == 9);

    /* dlclose runs a library's destructors before it unloads (as glibc does). */
    void *dtor_closed = open_lib("/lib/dtor_closed.so", RTLD_NOW);
    if (dtor_closed) {
        printf("dlclose dtor_closed.so\n");
        fflush(stdout);
        CHECK("dtor_ran_at_dlclose", dlclose(dtor_closed) == 0);
    }

    printf("failures %d\n", failures);
    return failures;
}
