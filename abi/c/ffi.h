/* ffi.h: libffi's C API (the part CPython's _ctypes uses) for wasm32-wasi, done by the
 * pymode host: pymode_ffi.c lowers each C signature to wasm types by the wasm32 C ABI and the
 * host's `pymode.ffi_*` imports make the call or the closure (DESIGN §2, docs/ctypes.md).
 *
 * The names, type codes and structure layouts are libffi's public interface, so code written
 * for libffi compiles unchanged. Limits: one ABI (FFI_DEFAULT_ABI); no variadic closures;
 * complex types are passed as clang passes them (by pointer) but _ctypes is built without
 * complex support.
 */
#ifndef PYMODE_FFI_H
#define PYMODE_FFI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FFI_TYPE_VOID 0
#define FFI_TYPE_INT 1
#define FFI_TYPE_FLOAT 2
#define FFI_TYPE_DOUBLE 3
#define FFI_TYPE_LONGDOUBLE 4
#define FFI_TYPE_UINT8 5
#define FFI_TYPE_SINT8 6
#define FFI_TYPE_UINT16 7
#define FFI_TYPE_SINT16 8
#define FFI_TYPE_UINT32 9
#define FFI_TYPE_SINT32 10
#define FFI_TYPE_UINT64 11
#define FFI_TYPE_SINT64 12
#define FFI_TYPE_STRUCT 13
#define FFI_TYPE_POINTER 14
#define FFI_TYPE_COMPLEX 15
#define FFI_TYPE_LAST FFI_TYPE_COMPLEX

#define FFI_CLOSURES 1
#define FFI_GO_CLOSURES 0
#define FFI_NATIVE_RAW_API 0
/* No code is written into memory: a closure is a host function in a table slot. */
#define FFI_TRAMPOLINE_SIZE 0
#define FFI_SIZEOF_ARG 4
#define FFI_FN(f) ((void (*)(void))(f))

typedef enum { FFI_OK = 0, FFI_BAD_TYPEDEF, FFI_BAD_ABI, FFI_BAD_ARGTYPE } ffi_status;

typedef enum ffi_abi { FFI_FIRST_ABI = 0, FFI_WASM32, FFI_LAST_ABI, FFI_DEFAULT_ABI = FFI_WASM32 } ffi_abi;

typedef struct _ffi_type {
    size_t size;
    unsigned short alignment;
    unsigned short type;
    struct _ffi_type **elements; /* FFI_TYPE_STRUCT: NULL-terminated member types */
} ffi_type;

/* Integer results smaller than this are returned widened to it (libffi's rule). */
typedef unsigned long ffi_arg;
typedef signed long ffi_sarg;

typedef struct {
    ffi_abi abi;
    unsigned nargs;
    ffi_type **arg_types;
    ffi_type *rtype;
    unsigned bytes;
    unsigned flags;
    /* ffi_prep_cif_var: the fixed arguments; the rest go in the variadic buffer. */
    unsigned nfixedargs;
    int variadic;
} ffi_cif;

typedef struct ffi_closure {
    int32_t slot; /* the table slot the host reserved: the closure's code address */
    ffi_cif *cif;
    void (*fun)(ffi_cif *, void *, void **, void *);
    void *user_data;
} ffi_closure;

extern ffi_type ffi_type_void;
extern ffi_type ffi_type_uint8;
extern ffi_type ffi_type_sint8;
extern ffi_type ffi_type_uint16;
extern ffi_type ffi_type_sint16;
extern ffi_type ffi_type_uint32;
extern ffi_type ffi_type_sint32;
extern ffi_type ffi_type_uint64;
extern ffi_type ffi_type_sint64;
extern ffi_type ffi_type_float;
extern ffi_type ffi_type_double;
extern ffi_type ffi_type_longdouble;
extern ffi_type ffi_type_pointer;

/* The C type names, for wasm32 (int and long are 32 bits). */
#define ffi_type_uchar ffi_type_uint8
#define ffi_type_schar ffi_type_sint8
#define ffi_type_ushort ffi_type_uint16
#define ffi_type_sshort ffi_type_sint16
#define ffi_type_uint ffi_type_uint32
#define ffi_type_sint ffi_type_sint32
#define ffi_type_ulong ffi_type_uint32
#define ffi_type_slong ffi_type_sint32

ffi_status ffi_prep_cif(ffi_cif *cif, ffi_abi abi, unsigned int nargs, ffi_type *rtype, ffi_type **atypes);
ffi_status ffi_prep_cif_var(ffi_cif *cif, ffi_abi abi, unsigned int nfixedargs, unsigned int ntotalargs, ffi_type *rtype,
                            ffi_type **atypes);
void ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue);
ffi_status ffi_get_struct_offsets(ffi_abi abi, ffi_type *struct_type, size_t *offsets);

void *ffi_closure_alloc(size_t size, void **code);
void ffi_closure_free(void *closure);
ffi_status ffi_prep_closure_loc(ffi_closure *closure, ffi_cif *cif, void (*fun)(ffi_cif *, void *, void **, void *),
                                void *user_data, void *codeloc);
ffi_status ffi_prep_closure(ffi_closure *closure, ffi_cif *cif, void (*fun)(ffi_cif *, void *, void **, void *),
                            void *user_data);

/* PyMode's additions. ffi_call cannot report a failure; this can: 0, or the host's code
 * (PYMODE_FFI_ERROR, PYMODE_FFI_MISMATCH: the callee's wasm type is not the signature's and
 * nothing was called, PYMODE_FFI_TRAPPED: the callee trapped). */
#define PYMODE_FFI_ERROR (-1)
#define PYMODE_FFI_MISMATCH (-2)
#define PYMODE_FFI_TRAPPED (-3)
int pymode_ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue);
/* The status of the last ffi_call / pymode_ffi_call to return (0 on success). */
int pymode_ffi_last_status(void);
/* The message of the last failure: the host's, with the C signature; "" if none. */
const char *pymode_ffi_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
