"""`sitecustomize` of every Python process in a PyMode cross build (it is on `PYTHONPATH`).

The build's own tools run on the native CPython 3.13 with the wasm CPython's `_sysconfigdata`
(`_PYTHON_SYSCONFIGDATA_NAME`), so `sysconfig.get_config_var` already answers for the target.
`sysconfig.get_paths()` does not: its `include` comes from the running interpreter's prefix,
and tools that ask it (meson's python dependency, `pybind11-config --includes`, numpy's
`get_include` users) would put the host's `pyconfig.h` on the command line. Here both include
paths name the wasm CPython's headers (`PYMODE_TARGET_INCLUDE`).
"""

import os
import sysconfig

_TARGET_INCLUDE = os.environ.get("PYMODE_TARGET_INCLUDE")

if _TARGET_INCLUDE:
    _host_get_paths = sysconfig.get_paths

    def _get_paths(scheme=None, vars=None, expand=True):
        paths = _host_get_paths(scheme, vars, expand) if scheme else _host_get_paths(vars=vars, expand=expand)
        if expand:
            paths["include"] = paths["platinclude"] = _TARGET_INCLUDE
        return paths

    sysconfig.get_paths = _get_paths
