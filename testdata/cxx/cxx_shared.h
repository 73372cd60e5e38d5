// The classes both C++ side modules of loader/tests/all/cxx.rs (`two_modules_*`) see, as two
// Python extensions would share a library's header. Each module is linked with its own copy
// of libc++ (docs/cxx.md, "Where libc++ lives").
#pragma once
#include <typeinfo>

#define CXX_SHARED_API __attribute__((visibility("default")))

// Inline members only: the typeinfo and vtable have vague linkage (weak, in a comdat), so
// each module that uses the class emits its own.
struct CXX_SHARED_API Base {
    virtual ~Base() {}
    virtual int kind() const { return 0; }
};
struct CXX_SHARED_API Inline : Base {
    int kind() const override { return 1; }
};

// The same, without a visibility attribute: zig c++ compiles wasm32 with -fvisibility=hidden,
// so this is what a class in an extension's own header gets.
struct Hidden : Base {
    int kind() const override { return 2; }
};

// A key function, defined only in cxx_module_a.cpp: module A holds the one strong typeinfo
// and vtable, and module B imports them.
struct CXX_SHARED_API Keyed : Base {
    int kind() const override;
};
