// Module B of loader/tests/all/cxx.rs's two-module test: uses Keyed without defining its key
// function, so it imports Keyed's typeinfo and vtable, which the loader finds in module A
// (loaded before it with RTLD_GLOBAL). Not linked against A: each module keeps all of its own
// libc++, as two independent extensions would.
#include "cxx_shared.h"

#define EXPORT(name) b_##name
#include "cxx_module_api.inc"
