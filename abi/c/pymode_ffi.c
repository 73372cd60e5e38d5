/* pymode_ffi.c: libffi's calls and closures for wasm32-wasi, over the pymode host's FFI
 * imports (pymode-abi `host::FFI`, DESIGN §2).
 *
 * wasm code cannot make a call frame for a signature known only at run time, nor new code
 * for a closure; the host can. So this file only lowers C signatures to wasm types, the way
 * clang's wasm32 C ABI does, and moves values between libffi's form (a pointer per argument)
 * and the host's (one 8-byte slot per wasm value):
 *
 *   - integers of up to 32 bits and pointers are i32; 64-bit integers i64; float f32;
 *     double f64; long double (IEEE quad) two i64 (low half first);
 *   - a struct whose only non-empty member, through nested structs, is one scalar of the
 *     struct's own size passes as that scalar; an empty struct passes as nothing; any other
 *     struct (and a complex number) passes as a pointer to a copy the caller owns;
 *   - a result of those "other" kinds, and a long double result, goes through a pointer
 *     passed as the first parameter (the function returns nothing);
 *   - a variadic function takes its fixed parameters, then one i32: the address of a buffer
 *     holding the variadic arguments, each at its own alignment (at least 4), after C's
 *     promotions (float to double, small integers to int); structs other than one-scalar
 *     ones are pointers to copies there too. Without variadic arguments it is 0.
 *
 * The host checks the callee's wasm type against the lowered signature before calling: a
 * mismatch is an error (pymode_ffi_last_status), never a trap.
 */
#include "ffi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYMODE_IMPORT(name) __attribute__((import_module("pymode"), import_name(name)))

PYMODE_IMPORT("ffi_call")
int32_t pymode_host_ffi_call(int32_t fn, const uint8_t *sig, int32_t nparams, const uint64_t *args, uint64_t *ret);
PYMODE_IMPORT("ffi_closure_alloc") int32_t pymode_host_ffi_closure_alloc(void);
PYMODE_IMPORT("ffi_closure_make")
int32_t pymode_host_ffi_closure_make(int32_t slot, int32_t trampoline, void *data, const uint8_t *sig, int32_t nparams);
PYMODE_IMPORT("ffi_closure_free") int32_t pymode_host_ffi_closure_free(int32_t slot);
PYMODE_IMPORT("ffi_error") int32_t pymode_host_ffi_error(char *buf, int32_t buf_len);

/* The host's wasm type codes (the wasm binary encoding). */
enum { W_I32 = 0x7f, W_I64 = 0x7e, W_F32 = 0x7d, W_F64 = 0x7c, W_VOID = 0x40 };

/* How one C value is passed. */
enum lowering { L_NONE, L_I32, L_I64, L_F32, L_F64, L_QUAD, L_INDIRECT, L_BAD };

ffi_type ffi_type_void = {1, 1, FFI_TYPE_VOID, NULL};
ffi_type ffi_type_uint8 = {1, 1, FFI_TYPE_UINT8, NULL};
ffi_type ffi_type_sint8 = {1, 1, FFI_TYPE_SINT8, NULL};
ffi_type ffi_type_uint16 = {2, 2, FFI_TYPE_UINT16, NULL};
ffi_type ffi_type_sint16 = {2, 2, FFI_TYPE_SINT16, NULL};
ffi_type ffi_type_uint32 = {4, 4, FFI_TYPE_UINT32, NULL};
ffi_type ffi_type_sint32 = {4, 4, FFI_TYPE_SINT32, NULL};
ffi_type ffi_type_uint64 = {8, 8, FFI_TYPE_UINT64, NULL};
ffi_type ffi_type_sint64 = {8, 8, FFI_TYPE_SINT64, NULL};
ffi_type ffi_type_float = {4, 4, FFI_TYPE_FLOAT, NULL};
ffi_type ffi_type_double = {8, 8, FFI_TYPE_DOUBLE, NULL};
ffi_type ffi_type_longdouble = {16, 16, FFI_TYPE_LONGDOUBLE, NULL};
ffi_type ffi_type_pointer = {4, 4, FFI_TYPE_POINTER, NULL};

static int last_status;
static char last_error[1024];

int pymode_ffi_last_status(void) { return last_status; }
const char *pymode_ffi_last_error(void) { return last_error; }

static size_t align_up(size_t v, size_t a) { return a > 1 ? (v + a - 1) & ~(a - 1) : v; }

/* ---- types ---------------------------------------------------------------------------- */

/* Fills in a struct's size and alignment from its members when its size is 0 (libffi's
 * rule: the caller may leave them for ffi_prep_cif); checks every type is one we know. */
static ffi_status complete_type(ffi_type *t, int depth) {
    if (t == NULL || depth > 64) return FFI_BAD_TYPEDEF;
    if (t->type > FFI_TYPE_LAST) return FFI_BAD_TYPEDEF;
    if (t->type != FFI_TYPE_STRUCT && t->type != FFI_TYPE_COMPLEX) return FFI_OK;
    if (t->elements == NULL || t->elements[0] == NULL) return FFI_BAD_TYPEDEF;
    size_t size = 0, align = 1;
    for (ffi_type **e = t->elements; *e != NULL; e++) {
        ffi_status s = complete_type(*e, depth + 1);
        if (s != FFI_OK) return s;
        size_t a = (*e)->alignment ? (*e)->alignment : 1;
        size = align_up(size, a) + (*e)->size;
        if (a > align) align = a;
    }
    if (t->size == 0) {
        t->size = align_up(size, align);
        t->alignment = (unsigned short)align;
    }
    return FFI_OK;
}

/* The one scalar a struct passes as (clang's "single element struct"), or NULL. */
static ffi_type *single_scalar(ffi_type *t, int depth) {
    ffi_type *found = NULL;
    if (depth > 64) return NULL;
    for (ffi_type **e = t->elements; e != NULL && *e != NULL; e++) {
        ffi_type *f = *e;
        if (f->type == FFI_TYPE_STRUCT) {
            if (f->size == 0) continue; /* an empty member */
            f = single_scalar(f, depth + 1);
            if (f == NULL) return NULL;
        } else if (f->type == FFI_TYPE_COMPLEX) {
            return NULL;
        }
        if (found != NULL) return NULL;
        found = f;
    }
    return found != NULL && found->size == t->size ? found : NULL;
}

/* How a value of type `t` is passed; `*scalar` is the type it passes as (itself, or a
 * one-scalar struct's member). */
static enum lowering lower(ffi_type *t, ffi_type **scalar) {
    *scalar = t;
    switch (t->type) {
    case FFI_TYPE_VOID: return L_NONE;
    case FFI_TYPE_INT: case FFI_TYPE_UINT8: case FFI_TYPE_SINT8: case FFI_TYPE_UINT16:
    case FFI_TYPE_SINT16: case FFI_TYPE_UINT32: case FFI_TYPE_SINT32: case FFI_TYPE_POINTER:
        return L_I32;
    case FFI_TYPE_UINT64: case FFI_TYPE_SINT64: return L_I64;
    case FFI_TYPE_FLOAT: return L_F32;
    case FFI_TYPE_DOUBLE: return L_F64;
    case FFI_TYPE_LONGDOUBLE: return L_QUAD;
    case FFI_TYPE_COMPLEX: return L_INDIRECT;
    case FFI_TYPE_STRUCT: {
        if (t->size == 0) return L_NONE;
        ffi_type *s = single_scalar(t, 0);
        if (s == NULL) return L_INDIRECT;
        ffi_type *inner;
        enum lowering l = lower(s, &inner);
        *scalar = inner;
        return l;
    }
    default: return L_BAD;
    }
}

/* Whether a result of this lowering comes back through a pointer first parameter. */
static int is_sret(enum lowering l) { return l == L_QUAD || l == L_INDIRECT; }

static uint8_t wasm_code(enum lowering l) {
    switch (l) {
    case L_I64: return W_I64;
    case L_F32: return W_F32;
    case L_F64: return W_F64;
    default: return W_I32;
    }
}

/* A small integer widened to 32 bits by its signedness. */
static uint32_t widen(const void *p, ffi_type *t) {
    switch (t->type) {
    case FFI_TYPE_UINT8: return *(const uint8_t *)p;
    case FFI_TYPE_SINT8: return (uint32_t)(int32_t) * (const int8_t *)p;
    case FFI_TYPE_UINT16: return *(const uint16_t *)p;
    case FFI_TYPE_SINT16: return (uint32_t)(int32_t) * (const int16_t *)p;
    default: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    }
}

/* ---- messages ------------------------------------------------------------------------- */

static size_t describe_type(ffi_type *t, char *buf, size_t cap, int depth);

static size_t put(char *buf, size_t cap, size_t at, const char *s) {
    size_t n = strlen(s);
    if (at < cap) {
        size_t room = cap - at - 1;
        memcpy(buf + at, s, n < room ? n : room);
        buf[at + (n < room ? n : room)] = 0;
    }
    return at + n;
}

static size_t describe_type(ffi_type *t, char *buf, size_t cap, int depth) {
    static const char *const names[] = {"void", "int", "float", "double", "long double", "uint8", "sint8", "uint16",
                                        "sint16", "uint32", "sint32", "uint64", "sint64", "struct", "pointer", "complex"};
    if (t == NULL || t->type > FFI_TYPE_LAST) return put(buf, cap, 0, "?");
    if (t->type != FFI_TYPE_STRUCT || depth > 4) return put(buf, cap, 0, names[t->type]);
    size_t at = put(buf, cap, 0, "struct {");
    for (ffi_type **e = t->elements; e != NULL && *e != NULL; e++) {
        if (e != t->elements) at = put(buf, cap, at, ", ");
        at += describe_type(*e, at < cap ? buf + at : buf + cap - 1, at < cap ? cap - at : 1, depth + 1);
    }
    return put(buf, cap, at, "}");
}

/* "sint32 (pointer, double, ...)" */
static void describe_cif(const ffi_cif *cif, char *buf, size_t cap) {
    size_t at = describe_type(cif->rtype, buf, cap, 0);
    at = put(buf, cap, at, " (");
    for (unsigned i = 0; i < cif->nargs; i++) {
        if (cif->variadic && i == cif->nfixedargs) at = put(buf, cap, at, i ? ", ..., " : "..., ");
        else if (i) at = put(buf, cap, at, ", ");
        if (at < cap) at += describe_type(cif->arg_types[i], buf + at, cap - at, 0);
    }
    if (cif->variadic && cif->nfixedargs == cif->nargs) at = put(buf, cap, at, cif->nargs ? ", ..." : "...");
    put(buf, cap, at, ")");
}

/* Records a failure: the host's message (if it has one) and the C signature. */
static void record_failure(int status, const char *what, const ffi_cif *cif) {
    char host[768];
    int32_t n = pymode_host_ffi_error(host, (int32_t)sizeof host - 1);
    host[n > 0 ? n : 0] = 0;
    char csig[240];
    csig[0] = 0;
    if (cif != NULL) describe_cif(cif, csig, sizeof csig);
    if (n > 0)
        snprintf(last_error, sizeof last_error, "%s (C signature %s)", host, cif != NULL ? csig : "unknown");
    else
        snprintf(last_error, sizeof last_error, "%s failed (C signature %s)", what, cif != NULL ? csig : "unknown");
    last_status = status;
}

/* ---- ffi_prep_cif --------------------------------------------------------------------- */

static ffi_status prep(ffi_cif *cif, ffi_abi abi, unsigned nfixed, unsigned ntotal, ffi_type *rtype, ffi_type **atypes,
                       int variadic) {
    if (cif == NULL || rtype == NULL || (ntotal > 0 && atypes == NULL)) return FFI_BAD_TYPEDEF;
    if (abi != FFI_DEFAULT_ABI) return FFI_BAD_ABI;
    if (nfixed > ntotal) return FFI_BAD_ARGTYPE;
    if (complete_type(rtype, 0) != FFI_OK) return FFI_BAD_TYPEDEF;
    for (unsigned i = 0; i < ntotal; i++) {
        ffi_type *scalar;
        if (complete_type(atypes[i], 0) != FFI_OK) return FFI_BAD_TYPEDEF;
        if (atypes[i]->type == FFI_TYPE_VOID || lower(atypes[i], &scalar) == L_BAD) return FFI_BAD_ARGTYPE;
    }
    cif->abi = abi;
    cif->nargs = ntotal;
    cif->arg_types = atypes;
    cif->rtype = rtype;
    cif->bytes = 0;
    cif->flags = 0;
    cif->nfixedargs = nfixed;
    cif->variadic = variadic;
    return FFI_OK;
}

ffi_status ffi_prep_cif(ffi_cif *cif, ffi_abi abi, unsigned int nargs, ffi_type *rtype, ffi_type **atypes) {
    return prep(cif, abi, nargs, nargs, rtype, atypes, 0);
}

ffi_status ffi_prep_cif_var(ffi_cif *cif, ffi_abi abi, unsigned int nfixedargs, unsigned int ntotalargs, ffi_type *rtype,
                            ffi_type **atypes) {
    return prep(cif, abi, nfixedargs, ntotalargs, rtype, atypes, 1);
}

ffi_status ffi_get_struct_offsets(ffi_abi abi, ffi_type *t, size_t *offsets) {
    if (abi != FFI_DEFAULT_ABI) return FFI_BAD_ABI;
    if (t == NULL || t->type != FFI_TYPE_STRUCT) return FFI_BAD_TYPEDEF;
    if (complete_type(t, 0) != FFI_OK) return FFI_BAD_TYPEDEF;
    size_t at = 0;
    for (ffi_type **e = t->elements; *e != NULL; e++) {
        at = align_up(at, (*e)->alignment ? (*e)->alignment : 1);
        if (offsets != NULL) *offsets++ = at;
        at += (*e)->size;
    }
    return FFI_OK;
}

/* ---- ffi_call ------------------------------------------------------------------------- */

/* The most wasm parameters a C argument lowers to. */
#define MAX_WASM_PER_ARG 2

int pymode_ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue) {
    unsigned nfixed = cif->variadic ? cif->nfixedargs : cif->nargs;
    unsigned cap = nfixed * MAX_WASM_PER_ARG + 2; /* + a result pointer, + the variadic buffer */
    uint8_t sig[cap + 1];
    uint64_t slots[cap];
    unsigned np = 0;
    ffi_type *rscalar;
    enum lowering rl = lower(cif->rtype, &rscalar);
    uint64_t ret[2] = {0, 0};

    if (is_sret(rl)) slots[np] = (uint32_t)(uintptr_t)rvalue, sig[np++] = W_I32;

    /* Copies of the structs passed by pointer: the callee may write to its argument. */
    size_t copy_bytes = 0;
    for (unsigned i = 0; i < cif->nargs; i++) {
        ffi_type *s;
        if (lower(cif->arg_types[i], &s) == L_INDIRECT) copy_bytes = align_up(copy_bytes, 16) + cif->arg_types[i]->size;
    }
    _Alignas(16) unsigned char copies[copy_bytes ? align_up(copy_bytes, 16) : 16];
    size_t copy_at = 0;

    for (unsigned i = 0; i < nfixed; i++) {
        ffi_type *t = cif->arg_types[i], *s;
        const void *v = avalue[i];
        switch (lower(t, &s)) {
        case L_NONE: break;
        case L_I32: slots[np] = widen(v, s), sig[np++] = W_I32; break;
        case L_I64: memcpy(&slots[np], v, 8), sig[np++] = W_I64; break;
        case L_F32: slots[np] = 0, memcpy(&slots[np], v, 4), sig[np++] = W_F32; break;
        case L_F64: memcpy(&slots[np], v, 8), sig[np++] = W_F64; break;
        case L_QUAD:
            memcpy(&slots[np], v, 16);
            sig[np++] = W_I64;
            sig[np++] = W_I64;
            break;
        case L_INDIRECT:
            copy_at = align_up(copy_at, 16);
            memcpy(copies + copy_at, v, t->size);
            slots[np] = (uint32_t)(uintptr_t)(copies + copy_at), sig[np++] = W_I32;
            copy_at += t->size;
            break;
        case L_BAD: return PYMODE_FFI_ERROR;
        }
    }

    if (cif->variadic) {
        /* The variadic buffer: promoted values, each at its alignment (at least 4). */
        size_t vbytes = 0;
        for (unsigned i = nfixed; i < cif->nargs; i++) {
            ffi_type *t = cif->arg_types[i], *s;
            enum lowering l = lower(t, &s);
            size_t size = l == L_I64 || l == L_F64 || (l == L_F32 && t->type == FFI_TYPE_FLOAT) ? 8 : l == L_QUAD ? 16 : 4;
            if (l != L_NONE) vbytes = align_up(vbytes, size) + size;
        }
        _Alignas(16) unsigned char vbuf[vbytes ? align_up(vbytes, 16) : 16];
        size_t at = 0;
        for (unsigned i = nfixed; i < cif->nargs; i++) {
            ffi_type *t = cif->arg_types[i], *s;
            const void *v = avalue[i];
            switch (lower(t, &s)) {
            case L_NONE: break;
            case L_I32: {
                uint32_t x = widen(v, s);
                at = align_up(at, 4);
                memcpy(vbuf + at, &x, 4);
                at += 4;
                break;
            }
            case L_F32:
                if (t->type == FFI_TYPE_FLOAT) { /* promoted to double; a one-float struct is not */
                    float f;
                    memcpy(&f, v, 4);
                    double d = f;
                    at = align_up(at, 8);
                    memcpy(vbuf + at, &d, 8);
                    at += 8;
                } else {
                    at = align_up(at, 4);
                    memcpy(vbuf + at, v, 4);
                    at += 4;
                }
                break;
            case L_I64: case L_F64:
                at = align_up(at, 8);
                memcpy(vbuf + at, v, 8);
                at += 8;
                break;
            case L_QUAD:
                at = align_up(at, 16);
                memcpy(vbuf + at, v, 16);
                at += 16;
                break;
            case L_INDIRECT: {
                copy_at = align_up(copy_at, 16);
                memcpy(copies + copy_at, v, t->size);
                uint32_t p = (uint32_t)(uintptr_t)(copies + copy_at);
                copy_at += t->size;
                at = align_up(at, 4);
                memcpy(vbuf + at, &p, 4);
                at += 4;
                break;
            }
            case L_BAD: return PYMODE_FFI_ERROR;
            }
        }
        slots[np] = vbytes ? (uint32_t)(uintptr_t)vbuf : 0, sig[np++] = W_I32;
        sig[np] = is_sret(rl) || rl == L_NONE ? W_VOID : wasm_code(rl);
        int32_t status = pymode_host_ffi_call((int32_t)(uintptr_t)fn, sig, (int32_t)np, slots, ret);
        if (status != 0) {
            record_failure(status, "ffi_call", cif);
            return status;
        }
    } else {
        sig[np] = is_sret(rl) || rl == L_NONE ? W_VOID : wasm_code(rl);
        int32_t status = pymode_host_ffi_call((int32_t)(uintptr_t)fn, sig, (int32_t)np, slots, ret);
        if (status != 0) {
            record_failure(status, "ffi_call", cif);
            return status;
        }
    }

    /* The result, as libffi leaves it: integers narrower than ffi_arg widened to it. */
    switch (rl) {
    case L_I32:
        if (cif->rtype->type == FFI_TYPE_STRUCT) {
            memcpy(rvalue, ret, cif->rtype->size);
        } else {
            uint32_t x = widen(ret, rscalar);
            memcpy(rvalue, &x, 4);
        }
        break;
    case L_I64: case L_F64: memcpy(rvalue, ret, 8); break;
    case L_F32: memcpy(rvalue, ret, 4); break;
    default: break; /* nothing, or written by the callee through the result pointer */
    }
    last_status = 0;
    return 0;
}

void ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue) { (void)pymode_ffi_call(cif, fn, rvalue, avalue); }

/* ---- closures ------------------------------------------------------------------------- */

/* What the host calls for every closure: `args` holds the closure's wasm parameters, one
 * 8-byte slot each; `ret` is a zeroed 16-byte area the host reads the result from. */
void pymode_ffi_closure_dispatch(ffi_closure *c, uint64_t *args, uint64_t *ret) {
    ffi_cif *cif = c->cif;
    unsigned n = cif->nargs;
    void *values[n ? n : 1];
    unsigned k = 0;
    ffi_type *rscalar;
    enum lowering rl = lower(cif->rtype, &rscalar);
    void *result = ret;
    if (is_sret(rl)) result = (void *)(uintptr_t)(uint32_t)args[k++];
    for (unsigned i = 0; i < n; i++) {
        ffi_type *s;
        switch (lower(cif->arg_types[i], &s)) {
        case L_NONE: values[i] = &args[k]; break;
        case L_QUAD: values[i] = &args[k]; k += 2; break;
        case L_INDIRECT: values[i] = (void *)(uintptr_t)(uint32_t)args[k++]; break;
        default: values[i] = &args[k++]; break; /* little-endian: the value starts the slot */
        }
    }
    c->fun(cif, result, values, c->user_data);
    /* The host reads an i32: widen what the callback wrote (it may write only its size). */
    if (rl == L_I32 && cif->rtype->type != FFI_TYPE_STRUCT) {
        uint32_t x = widen(ret, rscalar);
        memcpy(ret, &x, 4);
    }
}

void *ffi_closure_alloc(size_t size, void **code) {
    if (size < sizeof(ffi_closure)) size = sizeof(ffi_closure);
    ffi_closure *c = calloc(1, size);
    if (c == NULL) return NULL;
    int32_t slot = pymode_host_ffi_closure_alloc();
    if (slot < 0) {
        record_failure(slot, "ffi_closure_alloc", NULL);
        free(c);
        return NULL;
    }
    c->slot = slot;
    if (code != NULL) *code = (void *)(uintptr_t)(uint32_t)slot;
    return c;
}

void ffi_closure_free(void *p) {
    ffi_closure *c = p;
    if (c == NULL) return;
    (void)pymode_host_ffi_closure_free(c->slot);
    free(c);
}

ffi_status ffi_prep_closure_loc(ffi_closure *c, ffi_cif *cif, void (*fun)(ffi_cif *, void *, void **, void *), void *user_data,
                                void *codeloc) {
    if (c == NULL || cif == NULL || fun == NULL) return FFI_BAD_TYPEDEF;
    if (codeloc != (void *)(uintptr_t)(uint32_t)c->slot) return FFI_BAD_ARGTYPE;
    /* The dispatcher would have to read the variadic buffer back: not supported. */
    if (cif->variadic) return FFI_BAD_ABI;
    unsigned cap = cif->nargs * MAX_WASM_PER_ARG + 1;
    uint8_t sig[cap + 1];
    unsigned np = 0;
    ffi_type *s;
    enum lowering rl = lower(cif->rtype, &s);
    if (is_sret(rl)) sig[np++] = W_I32;
    for (unsigned i = 0; i < cif->nargs; i++) {
        switch (lower(cif->arg_types[i], &s)) {
        case L_NONE: break;
        case L_QUAD: sig[np++] = W_I64; sig[np++] = W_I64; break;
        case L_INDIRECT: sig[np++] = W_I32; break;
        case L_BAD: return FFI_BAD_TYPEDEF;
        default: sig[np++] = wasm_code(lower(cif->arg_types[i], &s)); break;
        }
    }
    sig[np] = is_sret(rl) || rl == L_NONE ? W_VOID : wasm_code(rl);
    c->cif = cif;
    c->fun = fun;
    c->user_data = user_data;
    int32_t status = pymode_host_ffi_closure_make(c->slot, (int32_t)(uintptr_t)&pymode_ffi_closure_dispatch, c, sig, (int32_t)np);
    if (status != 0) {
        record_failure(status, "ffi_closure_make", cif);
        return FFI_BAD_TYPEDEF;
    }
    return FFI_OK;
}

ffi_status ffi_prep_closure(ffi_closure *c, ffi_cif *cif, void (*fun)(ffi_cif *, void *, void **, void *), void *user_data) {
    return ffi_prep_closure_loc(c, cif, fun, user_data, c != NULL ? (void *)(uintptr_t)(uint32_t)c->slot : NULL);
}
