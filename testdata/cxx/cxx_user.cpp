// A C++ side module for loader/tests/all/cxx.rs, linked by pymode-ld with PyMode's libc++
// (build/src/cxx.rs). Each check prints one line, `check NAME VALUE`, that the Rust test
// compares with what native C++ gives; the test, not this file, decides what is right.
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_map>
#include <vector>

namespace {

struct Shape {
    virtual ~Shape() = default;
    virtual int sides() const = 0;
};
struct Square : Shape {
    int sides() const override { return 4; }
};
struct Triangle : Shape {
    int sides() const override { return 3; }
};

// A static constructor (run by __wasm_call_ctors at load) and destructor (registered with the
// main module's __cxa_atexit, run at exit).
struct Announcer {
    int value;
    Announcer() : value(42) { std::printf("check static_ctor ran\n"); }
    ~Announcer() { std::printf("check static_dtor ran\n"); }
};
Announcer announcer;

std::recursive_mutex lock;

}  // namespace

// zig c++ compiles with hidden visibility by default; what the main module dlsyms is made
// visible, as PyMODINIT_FUNC makes a Python extension's init function.
extern "C" __attribute__((visibility("default"))) Shape* cxx_make_shape(int sides) {
    if (sides == 4) return new Square;
    return new Triangle;
}

extern "C" __attribute__((visibility("default"))) int cxx_checks() {
    // One level only: wasi-libc's single-threaded pthread_mutex_lock stub tests
    // `m->_m_type&3 != PTHREAD_MUTEX_RECURSIVE`, which C parses as `_m_type & (3 != 1)`, so a
    // recursive mutex locked twice fails with EDEADLK (docs/cxx.md, "Threads").
    std::lock_guard<std::recursive_mutex> outer(lock);
    {
        std::mutex plain;
        std::lock_guard<std::mutex> guard(plain);
    }
    std::printf("check static_value %d\n", announcer.value);

    std::vector<int> v;
    for (int i = 1; i <= 100; i++) v.push_back(i * i);
    long sum = 0;
    for (int x : v) sum += x;
    std::printf("check vector_sum %ld\n", sum);

    std::string s = "wasm";
    for (int i = 0; i < 3; i++) s += "-" + std::to_string(i * 7);
    std::printf("check string %s %zu\n", s.c_str(), s.size());

    std::unordered_map<std::string, int> counts;
    const char* words[] = {"a", "b", "a", "c", "a", "b"};
    for (const char* w : words) counts[w]++;
    std::printf("check map a=%d b=%d c=%d size=%zu\n", counts["a"], counts["b"], counts["c"], counts.size());

    Shape* sq = cxx_make_shape(4);
    Shape* tr = cxx_make_shape(3);
    std::printf("check typeid_name %s\n", typeid(*sq).name());
    std::printf("check typeid_eq %d %d\n", typeid(*sq) == typeid(Square), typeid(*sq) == typeid(*tr));
    std::printf("check dynamic_cast %d %d\n", dynamic_cast<Square*>(sq) != nullptr, dynamic_cast<Square*>(tr) != nullptr);
    std::printf("check virtual %d\n", sq->sides() + tr->sides());
    delete sq;
    delete tr;
    std::fflush(stdout);
    return 0;
}

// A throw: the program must end with one line naming std::out_of_range, not return.
extern "C" __attribute__((visibility("default"))) int cxx_throw(int n) {
    if (n > 0) throw std::out_of_range("index " + std::to_string(n) + " out of range");
    return n;
}

// A try/catch: it compiles, and with no exception support the catch never runs.
extern "C" __attribute__((visibility("default"))) int cxx_try(int n) {
    try {
        return cxx_throw(n);
    } catch (const std::exception&) {
        return -1;
    }
}
