/* PyMode's replacement for CPython 3.13's Include/internal/pycore_emscripten_trampoline.h,
 * copied over the source tree's copy before the wasm32-wasi build (xtask/src/cpython.rs).
 *
 * CPython calls C functions of extensions through four macros (and, with the edits to
 * typeobject.c and gc.c, a fifth for tp_init and a sixth for tp_clear). On a native ABI, calling a
 * function through a pointer of another type with extra arguments works in practice, and
 * extensions rely on it: a getter defined as `f(PyObject *self)` in a PyGetSetDef, a
 * METH_NOARGS method without its unused second parameter. wasm's call_indirect checks the
 * exact signature and traps. On wasm32-wasi these macros go through
 * pymode_call_trampoline (abi/c/pymode_dlfcn.c, linked into python.wasm with the dlfcn
 * shim), which asks the host how many parameters the function takes (pymode.fn_arity) and
 * passes only those. Emscripten
 * builds do the same in JavaScript; everywhere else the macros are plain calls.
 */
#ifndef Py_EMSCRIPTEN_TRAMPOLINE_H
#define Py_EMSCRIPTEN_TRAMPOLINE_H

#include "pycore_runtime.h"  // _PyRuntimeState

#if defined(__wasi__)

void *pymode_call_trampoline(void *func, void *self, void *args, void *kw);

#define _Py_EmscriptenTrampoline_Init(runtime)

#define _PyCFunction_TrampolineCall(meth, self, args) \
    ((PyObject *)pymode_call_trampoline((void *)(meth), (void *)(self), (void *)(args), NULL))

#define _PyCFunctionWithKeywords_TrampolineCall(meth, self, args, kw) \
    ((PyObject *)pymode_call_trampoline((void *)(meth), (void *)(self), (void *)(args), (void *)(kw)))

#define descr_set_trampoline_call(set, obj, value, closure) \
    ((int)(intptr_t)pymode_call_trampoline((void *)(set), (void *)(obj), (void *)(value), (void *)(closure)))

#define descr_get_trampoline_call(get, obj, closure) \
    ((PyObject *)pymode_call_trampoline((void *)(get), (void *)(obj), (void *)(closure), NULL))

/* Not one of CPython's: type_call's tp_init call (an initproc declared without `kwds` is a
 * common case; xtask/src/cpython.rs edits typeobject.c to use this). */
#define pymode_initproc_call(init, obj, args, kwds) \
    ((int)(intptr_t)pymode_call_trampoline((void *)(init), (void *)(obj), (void *)(args), (void *)(kwds)))

/* Not one of CPython's either: the collector's tp_clear call (gc.c's delete_garbage,
 * edited by build/src/cpython.rs). Extensions declare tp_clear `void` and cast it into the
 * `inquiry` slot (kiwisolver); the collector ignores the result. */
#define pymode_inquiry_call(clear, obj) \
    ((int)(intptr_t)pymode_call_trampoline((void *)(clear), (void *)(obj), NULL, NULL))

#else

#define _Py_EmscriptenTrampoline_Init(runtime)

#define _PyCFunction_TrampolineCall(meth, self, args) \
    (meth)((self), (args))

#define _PyCFunctionWithKeywords_TrampolineCall(meth, self, args, kw) \
    (meth)((self), (args), (kw))

#define descr_set_trampoline_call(set, obj, value, closure) \
    (set)((obj), (value), (closure))

#define descr_get_trampoline_call(get, obj, closure) \
    (get)((obj), (closure))

#define pymode_initproc_call(init, obj, args, kwds) \
    (init)((obj), (args), (kwds))

#define pymode_inquiry_call(clear, obj) \
    (clear)((obj))

#endif

#endif
