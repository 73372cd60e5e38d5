/* The main module for loader/tests/all/cxx.rs's two-module test: dlopens /lib/cxx_module_a.so
 * with RTLD_GLOBAL, so that B's imports of Keyed's typeinfo and vtable resolve to A's, then
 * /lib/cxx_module_b.so, and for each shared class hands typeinfo pointers and objects made in
 * one module to the other. One line per class:
 * `KIND info_same N name_ptr_same N name_text_same N eq_in_a N eq_in_b N cast_in_a N
 * cast_in_b N own_cast N virtual N`, where eq_in_a is A's operator== on B's typeid, cast_in_a
 * is A's dynamic_cast of an object B made, own_cast is each module casting its own object
 * (both must be 1: the control), virtual is A calling kind() on B's object and B on A's. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef const void *(*typeinfo_fn)(int);
typedef const char *(*name_fn)(int);
typedef int (*same_fn)(const void *, int);
typedef void *(*make_fn)(int);
typedef int (*cast_fn)(void *, int);
typedef int (*object_fn)(void *);
typedef void (*destroy_fn)(void *);

struct module {
    typeinfo_fn typeinfo;
    name_fn name;
    same_fn same;
    make_fn make;
    cast_fn cast;
    object_fn virtual_kind;
    destroy_fn destroy;
};

static int load(const char *path, const char *prefix, int flags, struct module *m) {
    void *h = dlopen(path, flags);
    if (!h) { printf("FAIL dlopen %s: %s\n", path, dlerror()); return 0; }
    char name[64];
#define SYM(field)                                                   \
    snprintf(name, sizeof name, "%s%s", prefix, #field);             \
    *(void **)&m->field = dlsym(h, name);                            \
    if (!m->field) { printf("FAIL dlsym %s\n", name); return 0; }
    SYM(typeinfo) SYM(name) SYM(same) SYM(make) SYM(cast) SYM(virtual_kind) SYM(destroy)
#undef SYM
    return 1;
}

/* With argc and argv: an `int main(void)` main module linked this way printed nothing under
 * pymode-run and exited 0 (seen, not investigated). */
int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    struct module a, b;
    if (!load("/lib/cxx_module_a.so", "a_", RTLD_NOW | RTLD_GLOBAL, &a) ||
        !load("/lib/cxx_module_b.so", "b_", RTLD_NOW, &b)) return 100;
    const char *kinds[] = {"inline", "hidden", "keyed"};
    for (int k = 1; k <= 3; k++) {
        void *from_a = a.make(k), *from_b = b.make(k);
        printf("%s info_same %d name_ptr_same %d name_text_same %d eq_in_a %d eq_in_b %d cast_in_a %d cast_in_b %d own_cast %d "
               "virtual %d\n",
               kinds[k - 1], a.typeinfo(k) == b.typeinfo(k), a.name(k) == b.name(k), strcmp(a.name(k), b.name(k)) == 0,
               a.same(b.typeinfo(k), k), b.same(a.typeinfo(k), k), a.cast(from_b, k), b.cast(from_a, k),
               a.cast(from_a, k) && b.cast(from_b, k), a.virtual_kind(from_b) == k && b.virtual_kind(from_a) == k);
        a.destroy(from_b);
        b.destroy(from_a);
    }
    fflush(stdout);
    return 0;
}
