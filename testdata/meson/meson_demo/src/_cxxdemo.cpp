// meson_demo._cxxdemo: std::string, std::vector, std::sort and std::unordered_map through
// the C++ runtime that pymode links into C++ side modules.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

static std::vector<std::string> split(const char *text) {
    std::istringstream in(text);
    std::vector<std::string> words;
    for (std::string word; in >> word;) words.push_back(word);
    return words;
}

static PyObject *sorted_words(PyObject *, PyObject *args) {
    const char *text;
    if (!PyArg_ParseTuple(args, "s", &text)) return nullptr;
    std::vector<std::string> words = split(text);
    std::sort(words.begin(), words.end());
    PyObject *list = PyList_New(0);
    for (const std::string &w : words) {
        PyObject *item = PyUnicode_FromStringAndSize(w.data(), static_cast<Py_ssize_t>(w.size()));
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return nullptr;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *word_counts(PyObject *, PyObject *args) {
    const char *text;
    if (!PyArg_ParseTuple(args, "s", &text)) return nullptr;
    std::unordered_map<std::string, long> counts;
    for (const std::string &w : split(text)) counts[w] += 1;
    PyObject *dict = PyDict_New();
    for (const auto &entry : counts) {
        PyObject *value = PyLong_FromLong(entry.second);
        if (!value || PyDict_SetItemString(dict, entry.first.c_str(), value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(dict);
            return nullptr;
        }
        Py_DECREF(value);
    }
    return dict;
}

static PyMethodDef methods[] = {
    {"sorted_words", sorted_words, METH_VARARGS, "The words of a string, sorted."},
    {"word_counts", word_counts, METH_VARARGS, "How often each word occurs."},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cxxdemo", nullptr, 0, methods};

PyMODINIT_FUNC PyInit__cxxdemo(void) { return PyModule_Create(&module); }
