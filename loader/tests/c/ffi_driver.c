/* Drives the libffi layer (abi/c/pymode_ffi.c, linked into this side module) against the
 * functions of libcallees.so: every check prints "ok NAME" or "FAIL NAME ...";
 * ffi_checks() returns the number of failures. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffi.h"

static int failures;
#define CHECK(name, cond)                                                                   \
    do {                                                                                    \
        if (cond) printf("ok %s\n", name);                                                  \
        else { printf("FAIL %s (line %d): %s\n", name, __LINE__, pymode_ffi_last_error()); failures++; } \
    } while (0)

struct point { int x, y; };
struct big { int a, b, c; double d; };

static void *lib;
static void (*sym(const char *name))(void) {
    void *p = dlsym(lib, name);
    if (p == NULL) { printf("FAIL dlsym %s: %s\n", name, dlerror()); failures++; }
    return (void (*)(void))p;
}

static int cmp_calls;
/* A closure body: compares two ints (qsort's comparator, descending). */
static void cmp_desc(ffi_cif *cif, void *ret, void **args, void *user) {
    const int *a = *(const int **)args[0], *b = *(const int **)args[1];
    *(ffi_arg *)ret = (ffi_arg)(*b - *a);
    cmp_calls += *(int *)user;
}
static void combine(ffi_cif *cif, void *ret, void **args, void *user) {
    *(double *)ret = *(double *)args[0] * 10 + (double)*(long long *)args[1];
}
static void negate(ffi_cif *cif, void *ret, void **args, void *user) { *(ffi_arg *)ret = (ffi_arg)(-*(int *)args[0]); }

int ffi_checks(void) {
    lib = dlopen("/lib/libcallees.so", RTLD_NOW);
    if (lib == NULL) { printf("FAIL dlopen: %s\n", dlerror()); return 1; }
    ffi_cif cif;

    ffi_type *ii[] = {&ffi_type_sint, &ffi_type_sint};
    int a = 40, b = 2;
    void *vab[] = {&a, &b};
    ffi_arg r32 = 0;
    CHECK("prep_int", ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, ii) == FFI_OK);
    ffi_call(&cif, sym("add_i"), &r32, vab);
    CHECK("call_int", (int)r32 == 42 && pymode_ffi_last_status() == 0);

    /* As in C: extra trailing arguments are dropped, a result declared void is ignored. */
    ffi_type *iii[] = {&ffi_type_sint, &ffi_type_sint, &ffi_type_sint};
    int extra = 99;
    void *vabx[] = {&a, &b, &extra};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_sint, iii);
    r32 = 0;
    ffi_call(&cif, sym("add_i"), &r32, vabx);
    CHECK("extra_arguments_dropped", (int)r32 == 42 && pymode_ffi_last_status() == 0);
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_void, ii);
    ffi_call(&cif, sym("add_i"), NULL, vab);
    CHECK("result_declared_void_ignored", pymode_ffi_last_status() == 0);
    /* Fewer arguments than the callee takes stay an error. */
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint, ii);
    CHECK("missing_arguments_are_an_error", pymode_ffi_call(&cif, sym("add_i"), &r32, vab) == PYMODE_FFI_MISMATCH);

    ffi_type *lli[] = {&ffi_type_sint64, &ffi_type_sint};
    long long big = 3000000000LL, rll = 0;
    int three = 3;
    void *vll[] = {&big, &three};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint64, lli);
    ffi_call(&cif, sym("mul_ll"), &rll, vll);
    CHECK("call_long_long", rll == 9000000000LL);

    ffi_type *dfi[] = {&ffi_type_double, &ffi_type_float, &ffi_type_sint};
    double d = 1.5, rd = 0;
    float f = 4.0f;
    int c = 7;
    void *vdfi[] = {&d, &f, &c};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_double, dfi);
    ffi_call(&cif, sym("mix"), &rd, vdfi);
    CHECK("call_double_float_int", rd == 13.0);

    ffi_type *fl[] = {&ffi_type_float};
    float hf = 5.0f, rf = 0;
    void *vf[] = {&hf};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_float, fl);
    ffi_call(&cif, sym("half"), &rf, vf);
    CHECK("call_float", rf == 2.5f);

    ffi_type *s8[] = {&ffi_type_sint8};
    signed char sc = 5;
    ffi_arg r8 = 0;
    void *vs8[] = {&sc};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint8, s8);
    ffi_call(&cif, sym("neg8"), &r8, vs8);
    CHECK("call_sint8_widened", (ffi_sarg)r8 == -5);

    ffi_type *u16[] = {&ffi_type_uint16};
    unsigned short us = 40000;
    void *vu16[] = {&us};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_uint16, u16);
    ffi_call(&cif, sym("twice16"), &r32, vu16);
    CHECK("call_uint16", r32 == (unsigned short)80000);

    unsigned long long ru = 0;
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &ffi_type_uint64, NULL);
    ffi_call(&cif, sym("big_u64"), &ru, NULL);
    CHECK("call_no_args_uint64", ru == 0xF000000000000001ULL);

    ffi_type *p1[] = {&ffi_type_pointer};
    char text[] = "hello";
    char *tp = text, *rp = NULL;
    void *vp[] = {&tp};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_pointer, p1);
    ffi_call(&cif, sym("upper"), &rp, vp);
    CHECK("call_pointer", rp == text && strcmp(text, "HELLO") == 0);

    struct point pt = {3, 4};
    struct point *ptp = &pt;
    void *vpt[] = {&ptp};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint, p1);
    ffi_call(&cif, sym("sum_point"), &r32, vpt);
    CHECK("call_struct_by_pointer", (int)r32 == 7);

    ffi_type *big_el[] = {&ffi_type_sint, &ffi_type_sint, &ffi_type_sint, &ffi_type_double, NULL};
    ffi_type big_t = {0, 0, FFI_TYPE_STRUCT, big_el};
    ffi_type *bt[] = {&big_t};
    struct big bv = {1, 2, 3, 0.5};
    void *vbig[] = {&bv};
    CHECK("prep_struct_layout", ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_double, bt) == FFI_OK && big_t.size == sizeof(struct big)
                                    && big_t.alignment == _Alignof(struct big));
    ffi_call(&cif, sym("sum_big"), &rd, vbig);
    CHECK("call_struct_by_value_is_a_copy", rd == 6.5 && bv.a == 1);

    ffi_type *id[] = {&ffi_type_sint, &ffi_type_double};
    struct big made = {0};
    int ma = 10;
    double md = 0.25;
    void *vmade[] = {&ma, &md};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &big_t, id);
    ffi_call(&cif, sym("make_big"), &made, vmade);
    CHECK("call_struct_result", made.a == 10 && made.b == 11 && made.c == 12 && made.d == 0.25);

    ffi_type *wrap_el[] = {&ffi_type_double, NULL};
    ffi_type wrap_t = {0, 0, FFI_TYPE_STRUCT, wrap_el};
    ffi_type *wt[] = {&wrap_t};
    double w = 1.25, rw = 0;
    void *vw[] = {&w};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &wrap_t, wt);
    ffi_call(&cif, sym("twice_wrap"), &rw, vw);
    CHECK("call_one_double_struct_as_scalar", rw == 2.5);

    ffi_type *tiny_el[] = {&ffi_type_sint8, NULL};
    ffi_type tiny_t = {0, 0, FFI_TYPE_STRUCT, tiny_el};
    ffi_type *tt[] = {&tiny_t};
    char tc = 'a', rtc[4] = {0};
    void *vt[] = {&tc};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &tiny_t, tt);
    ffi_call(&cif, sym("next_tiny"), rtc, vt);
    CHECK("call_one_char_struct", rtc[0] == 'b');

    ffi_type *ld2[] = {&ffi_type_longdouble, &ffi_type_longdouble};
    long double la = 1.25L, lb = 2.5L, lr = 0;
    void *vld[] = {&la, &lb};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_longdouble, ld2);
    ffi_call(&cif, sym("ld_add"), &lr, vld);
    CHECK("call_long_double", lr == 3.75L);

    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &ffi_type_void, NULL);
    ffi_call(&cif, sym("bump"), NULL, NULL);
    ffi_call(&cif, sym("bump"), NULL, NULL);
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &ffi_type_sint, NULL);
    ffi_call(&cif, sym("get_counter"), &r32, NULL);
    CHECK("call_void", (int)r32 == 2);

    /* Variadic: int sum_var(int n, ...) with four ints. */
    ffi_type *vi[] = {&ffi_type_sint, &ffi_type_sint, &ffi_type_sint, &ffi_type_sint, &ffi_type_sint};
    int n4 = 4, x1 = 1, x2 = 20, x3 = 300, x4 = 4000;
    void *vv[] = {&n4, &x1, &x2, &x3, &x4};
    CHECK("prep_var", ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 5, &ffi_type_sint, vi) == FFI_OK);
    ffi_call(&cif, sym("sum_var"), &r32, vv);
    CHECK("call_variadic_ints", (int)r32 == 4321);

    /* double sum_mixed_var(const char *, ...) with int, long long, float (promoted), pointer. */
    ffi_type *mv[] = {&ffi_type_pointer, &ffi_type_sint, &ffi_type_sint64, &ffi_type_float, &ffi_type_pointer};
    const char *kinds = "ildp";
    int mi = 1;
    long long ml = 20;
    float mf = 0.5f;
    struct point mp = {3, 4};
    struct point *mpp = &mp;
    void *vmv[] = {&kinds, &mi, &ml, &mf, &mpp};
    ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 5, &ffi_type_double, mv);
    ffi_call(&cif, sym("sum_mixed_var"), &rd, vmv);
    CHECK("call_variadic_mixed", rd == 1 + 20 + 0.5 + 304);

    /* snprintf from the main module, variadic. */
    ffi_type *sn[] = {&ffi_type_pointer, &ffi_type_uint32, &ffi_type_pointer, &ffi_type_sint, &ffi_type_double, &ffi_type_pointer};
    char out[64];
    char *outp = out;
    unsigned size = sizeof out;
    const char *fmt = "%d|%.2f|%s";
    int si = -12;
    double sd = 3.14159;
    const char *ss = "wasm";
    void *vsn[] = {&outp, &size, &fmt, &si, &sd, &ss};
    void *snprintf_fn = dlsym(RTLD_DEFAULT, "snprintf");
    ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 3, 6, &ffi_type_sint, sn);
    ffi_call(&cif, (void (*)(void))snprintf_fn, &r32, vsn);
    CHECK("call_snprintf", snprintf_fn != NULL && (int)r32 == 13 && strcmp(out, "-12|3.14|wasm") == 0);

    /* A signature that does not match: an error naming both, nothing called. */
    ffi_type *dd[] = {&ffi_type_double, &ffi_type_double};
    double d1 = 1, d2 = 2;
    void *vdd[] = {&d1, &d2};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, dd);
    int st = pymode_ffi_call(&cif, sym("add_i"), &r32, vdd);
    const char *msg = pymode_ffi_last_error();
    CHECK("mismatch_is_an_error", st == PYMODE_FFI_MISMATCH && pymode_ffi_last_status() == PYMODE_FFI_MISMATCH);
    CHECK("mismatch_names_both_signatures", strstr(msg, "(i32, i32) -> i32") != NULL && strstr(msg, "(f64, f64) -> i32") != NULL
                                                && strstr(msg, "sint32 (double, double)") != NULL);
    if (strstr(msg, "(i32, i32) -> i32") == NULL) printf("message: %s\n", msg);

    /* A trapping callee: an error, and the next call works. */
    ffi_type *i1[] = {&ffi_type_sint};
    int one = 1;
    void *vone[] = {&one};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint, i1);
    st = pymode_ffi_call(&cif, sym("boom"), &r32, vone);
    CHECK("trap_is_an_error", st == PYMODE_FFI_TRAPPED && strstr(pymode_ffi_last_error(), "trap") != NULL);
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, ii);
    ffi_call(&cif, sym("add_i"), &r32, vab);
    CHECK("call_after_trap", (int)r32 == 42 && pymode_ffi_last_status() == 0);

    /* Null and empty slots. */
    st = pymode_ffi_call(&cif, (void (*)(void))0, &r32, vab);
    CHECK("null_function_is_an_error", st == PYMODE_FFI_ERROR && strstr(pymode_ffi_last_error(), "holds no function") != NULL);

    /* Closures: qsort (main module) with a closure comparator. */
    void *code = NULL;
    ffi_closure *cl = ffi_closure_alloc(sizeof(ffi_closure), &code);
    ffi_cif ccif;
    ffi_type *pp[] = {&ffi_type_pointer, &ffi_type_pointer};
    int step = 1;
    CHECK("closure_alloc", cl != NULL && code != NULL);
    CHECK("closure_prep", ffi_prep_cif(&ccif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, pp) == FFI_OK
                              && ffi_prep_closure_loc(cl, &ccif, cmp_desc, &step, code) == FFI_OK);
    int values[8] = {5, 3, 9, 1, 7, 2, 8, 6};
    qsort(values, 8, sizeof(int), (int (*)(const void *, const void *))code);
    int sorted = 1;
    for (int i = 1; i < 8; i++) sorted &= values[i - 1] >= values[i];
    CHECK("closure_as_qsort_comparator", sorted && cmp_calls > 0);

    /* A closure with f64 and i64 parameters and an f64 result, called from a side module. */
    void *code2 = NULL;
    ffi_closure *cl2 = ffi_closure_alloc(sizeof(ffi_closure), &code2);
    ffi_cif ccif2;
    ffi_type *dl[] = {&ffi_type_double, &ffi_type_sint64};
    ffi_prep_cif(&ccif2, FFI_DEFAULT_ABI, 2, &ffi_type_double, dl);
    CHECK("closure2_prep", ffi_prep_closure_loc(cl2, &ccif2, combine, NULL, code2) == FFI_OK);
    ffi_type *apply_t[] = {&ffi_type_pointer, &ffi_type_double, &ffi_type_sint64};
    double ax = 4.5;
    long long ay = 7;
    void *vapply[] = {&code2, &ax, &ay};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_double, apply_t);
    ffi_call(&cif, sym("apply"), &rd, vapply);
    CHECK("closure_f64_i64_through_ffi_call", rd == 4.5 * 10 + 7 + 1);
    CHECK("closure_called_directly", ((double (*)(double, long long))code2)(1.0, 2) == 12.0);

    /* A closure called from ffi_call of another closure's caller, nested: apply_int(negate). */
    void *code3 = NULL;
    ffi_closure *cl3 = ffi_closure_alloc(sizeof(ffi_closure), &code3);
    ffi_cif ccif3;
    ffi_prep_cif(&ccif3, FFI_DEFAULT_ABI, 1, &ffi_type_sint, i1);
    ffi_prep_closure_loc(cl3, &ccif3, negate, NULL, code3);
    ffi_type *ai[] = {&ffi_type_pointer, &ffi_type_sint};
    int av = 17;
    void *vai[] = {&code3, &av};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, ai);
    ffi_call(&cif, sym("apply_int"), &r32, vai);
    CHECK("closure_int_through_ffi_call", (int)r32 == -17);

    /* Freeing: the slot empties (a call through it is an error, not a call), and is reused. */
    ffi_closure_free(cl3);
    ffi_call(&cif, sym("apply_int"), &r32, vai);
    CHECK("freed_closure_traps_in_callee", pymode_ffi_last_status() == PYMODE_FFI_TRAPPED);
    void *code4 = NULL;
    ffi_closure *cl4 = ffi_closure_alloc(sizeof(ffi_closure), &code4);
    CHECK("closure_slot_reused", code4 == code3);
    ffi_closure_free(cl4);
    ffi_closure_free(cl2);
    ffi_closure_free(cl);

    /* Many closures made and freed keep the table flat. */
    void *first = NULL;
    int same = 1;
    for (int i = 0; i < 1000; i++) {
        void *ci = NULL;
        ffi_closure *x = ffi_closure_alloc(sizeof(ffi_closure), &ci);
        if (x == NULL || ffi_prep_closure_loc(x, &ccif3, negate, NULL, ci) != FFI_OK) { same = 0; break; }
        if (((int (*)(int))ci)(i) != -i) same = 0;
        if (first == NULL) first = ci;
        else if (ci != first) same = 0;
        ffi_closure_free(x);
    }
    CHECK("closures_made_and_freed_reuse_one_slot", same);

    dlclose(lib);
    return failures;
}
