// PyMode's C++ exception entry points for wasm32-wasi, linked into every C++ side module with
// libc++ (docs/cxx.md, "Exceptions"). The wasm32-wasi target has no exception handling: a
// `throw` cannot unwind, and a `catch` never runs. Rather than leave `__cxa_throw` an
// unresolved import, or let a throw fall through into a wrong result, these end the program
// with one line on stderr that names the exception's type and says why.
#include <cstdio>
#include <cstdlib>
#include <typeinfo>

// From libc++abi (cxa_demangle.cpp); declared here because <cxxabi.h> declares the entry
// points below with the attributes of the unwinding implementation.
namespace __cxxabiv1 {
extern "C" char* __cxa_demangle(const char* mangled, char* buf, size_t* len, int* status);
}

namespace {

// Where the exception object lives until abort: storage for one, then malloc.
alignas(16) unsigned char first_exception[256];
bool first_exception_used = false;

[[noreturn]] void die(const char* what, const std::type_info* type) {
    const char* mangled = type ? type->name() : nullptr;
    int status = -1;
    char* readable = mangled ? __cxxabiv1::__cxa_demangle(mangled, nullptr, nullptr, &status) : nullptr;
    const char* name = status == 0 && readable ? readable : (mangled ? mangled : "unknown");
    std::fprintf(stderr, "C++ exception of type %s %s: wasm32-wasi has no exception support, so it cannot be caught; aborting\n",
                 name, what);
    std::fflush(stderr);
    std::abort();
}

}  // namespace

extern "C" {

void* __cxa_allocate_exception(size_t size) noexcept {
    if (!first_exception_used && size <= sizeof(first_exception)) {
        first_exception_used = true;
        return first_exception;
    }
    void* p = std::malloc(size);
    if (!p) {
        std::fputs("C++ exception: out of memory allocating the exception object; aborting\n", stderr);
        std::abort();
    }
    return p;
}

void __cxa_free_exception(void* thrown) noexcept {
    if (thrown != first_exception) {
        std::free(thrown);
    }
}

// On wasm a destructor returns its argument, hence the destructor pointer's type.
[[noreturn]] void __cxa_throw(void*, std::type_info* type, void* (*)(void*)) {
    die("thrown", type);
}

[[noreturn]] void __cxa_rethrow() {
    die("rethrown", nullptr);
}

// A catch block is never entered (no unwinding reaches it), but its code is still compiled
// and names these.
void* __cxa_begin_catch(void* thrown) noexcept {
    return thrown;
}

void __cxa_end_catch() {}

void* __cxa_get_exception_ptr(void* thrown) noexcept {
    return thrown;
}

}  // extern "C"
