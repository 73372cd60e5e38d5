/* Exercises: a PyMethodDef-like static table of {name, function pointer, flags, doc} in data,
 * i.e. TABLE_INDEX_I32 (function pointers) and MEMORY_ADDR_I32 (strings) data relocations,
 * and an indirect call through the table. The table escapes via method_table_get(), as a
 * real PyModuleDef would.
 * Check: method_table_check() returns 15 (double(5) + square(3) + negate(4) = 10 + 9 - 4)
 * if the calls and the names are right, else -1. */

struct MethodDef {
    const char *ml_name;
    int (*ml_meth)(int);
    int ml_flags;
    const char *ml_doc;
};

static int m_double(int x) { return 2 * x; }
static int m_square(int x) { return x * x; }
int m_negate(int x) { return -x; }

static struct MethodDef methods[] = {
    {"double", m_double, 1, "Return twice x."},
    {"square", m_square, 1, "Return x squared."},
    {"negate", m_negate, 8, "Return minus x."},
    {0, 0, 0, 0},
};

struct MethodDef *method_table_get(void) { return methods; }

int method_table_call(int i, int x) { return method_table_get()[i].ml_meth(x); }

const char *method_table_name(int i) { return method_table_get()[i].ml_name; }

int method_table_check(void) {
    if (method_table_name(0)[0] != 'd' || method_table_name(2)[0] != 'n') return -1;
    return method_table_call(0, 5) + method_table_call(1, 3) + method_table_call(2, 4);
}
