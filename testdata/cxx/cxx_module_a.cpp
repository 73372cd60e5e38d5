// Module A of loader/tests/all/cxx.rs's two-module test: defines Keyed's key function, so it
// holds Keyed's typeinfo and vtable.
#include "cxx_shared.h"

int Keyed::kind() const { return 3; }

#define EXPORT(name) a_##name
#include "cxx_module_api.inc"
