"""Builds an unmodified sdist for the wasm32-wasi CPython (`pymode wheel`, `cargo xtask build-ext`).

Runs on a native CPython 3.13 (the host), inside an isolated build environment that holds the
package's own build requirements (PEP 518). The package's own PEP 517 backend runs in this process, so its `setup.py`, its
Cython step and its `build_ext` see a cross configuration instead of the host's:

* `sysconfig` reads the wasm CPython's `_sysconfigdata` (the caller sets
  `_PYTHON_SYSCONFIGDATA_NAME` and puts a copy of that file on `PYTHONPATH`), so the extension
  suffix, SOABI and the wheel's platform tag are the target's;
* `CC` and `CXX` are zig cc / zig c++ for wasm32-wasi with `-fPIC`, behind this script's
  `cc` / `cxx` modes: a compile goes to zig, a `-shared` link goes to `pymode-ld -shared`
  (translated from compiler-driver form). `LDSHARED` is `cc -shared`, so C and C++
  extensions (distutils links C++ with the C++ compiler) both end in pymode-ld;
* Python's include directory is the wasm CPython's.

A recipe (`build/recipes/NAME.toml` or `--recipe FILE`, optional) adds only what the build cannot find out by
itself: environment variables, PEP 517 config settings, and static libraries to link.

Usage:
    pymode_build_ext.py wheel --source DIR --wheel-dir DIR --include DIR
                              --cc ZCC --cxx ZCXX --ar ZAR --pymode-ld PATH --result FILE
                              [--site DIR] [--recipe FILE] [--static NAME=DIR]...
                              [--requires-out FILE]

`--requires-out`: if the backend's `get_requires_for_build_wheel` asks for requirements the
environment does not satisfy, they are written to FILE (one a line) and the exit code is 3, so
the caller can make an environment that has them and run the build again.
    pymode_build_ext.py cc|cxx ARGS...        (what CC / CXX run)
"""

import argparse
import os
import shlex
import sys
import time
import zipfile

# Compiler-driver options that mean nothing to a linker: distutils appends CFLAGS and CPPFLAGS
# to LDSHARED, and packages put compile flags in extra_link_args.
_DROPPED_PREFIXES = ("-O", "-g", "-f", "-m", "-I", "-D", "-U", "-W", "-std=", "-pthread", "-pipe", "--target=")
_DROPPED_WITH_VALUE = ("-target", "-isystem", "-include", "-MF", "-MT")
# Parts of libc on other platforms: here the main module (python.wasm) exports all of libc,
# so there is nothing to link and no such archive to find.
_LIBC_LIBRARIES = ("-lm", "-lc", "-ldl", "-lpthread", "-lrt", "-lutil")
# The C++ runtime: PyMode's libc++ archive (build/src/cxx.rs, `PYMODE_CXX_RUNTIME`) stands for
# all of these, and is added to every link (its members are taken only when a C++ symbol is
# undefined, so a C extension links as before).
_CXX_LIBRARIES = ("-lstdc++", "-lc++", "-lc++abi", "-lsupc++")
# libc++ with its threads API over wasi-libc's single-threaded pthread stubs (build/src/cxx.rs
# THREADS_FLAGS): added to every compile, as the runtime was built with them.
_CXX_THREADS_FLAGS = ["-U_LIBCPP_HAS_THREADS", "-D_LIBCPP_HAS_THREADS=1"]
# GNU-ld flags meson (and some setup.py files) put on every shared-module link. Each is
# dropped because it has no meaning for a side module (docs/linker.md, "GNU-ld flags"):
# `--as-needed`: NEEDED entries come only from explicit `-l` of side modules, and libc is the
#   main module's; `--allow-shlib-undefined`: undefined symbols are always imports resolved at
#   load time; `--start-group`/`--end-group`: pymode-ld resolves archive members until no
#   undefined symbol is left, whatever the order; `--no-undefined`, `-z defs`: a side module's
#   undefined symbols are by design the main module's exports.
_GNU_LD_NO_OPS = (
    "--as-needed", "--no-as-needed", "--allow-shlib-undefined", "--no-allow-shlib-undefined",
    "--start-group", "--end-group", "-(", "-)", "--no-undefined", "--no-copy-dt-needed-entries",
)
_GNU_LD_NO_OPS_WITH_VALUE = ("-z",)


def expand_response_files(args, depth=0):
    """Replaces each `@FILE` with the arguments FILE holds (quoted as a shell would split them).

    meson and ninja write long link lines to response files; a `@FILE` that names no file is
    left as it is, as compiler drivers do.
    """
    out = []
    for arg in args:
        if arg.startswith("@") and os.path.isfile(arg[1:]) and depth < 8:
            with open(arg[1:]) as f:
                out.extend(expand_response_files(shlex.split(f.read()), depth + 1))
        else:
            out.append(arg)
    return out


def linker_args(args):
    """The linker's own arguments of `-Wl,A,B` and `-Xlinker A`, without GNU-ld's no-ops."""
    out = []
    it = iter(args)
    for arg in it:
        if arg in _GNU_LD_NO_OPS:
            continue
        if arg in _GNU_LD_NO_OPS_WITH_VALUE:
            next(it, None)
            continue
        if arg.startswith("-z") and len(arg) > 2:
            continue
        out.append(arg)
    return out


def ldshared_argv(args, pymode_ld, cxx_runtime=None):
    """Translates a `cc -shared ...` link line to a `pymode-ld -shared ...` one."""
    out = [pymode_ld, "-shared"]
    wl = []
    it = iter(expand_response_files(args))
    for arg in it:
        if arg in ("-shared", "--shared"):
            continue
        if arg.startswith("-Wl,"):
            wl.extend(a for a in arg[4:].split(",") if a)
            continue
        if wl:
            out.extend(linker_args(wl))
            wl = []
        if arg == "-Xlinker":
            wl.append(next(it, ""))
        elif arg == "-s":
            out.append("--strip-all")
        elif arg in _LIBC_LIBRARIES or arg in _CXX_LIBRARIES:
            continue
        elif arg in _DROPPED_WITH_VALUE:
            next(it, None)
        elif arg.startswith(_DROPPED_PREFIXES):
            continue
        else:
            out.append(arg)
    out.extend(linker_args(wl))
    if cxx_runtime:
        out.append(cxx_runtime)
    return out


def compiler_main(mode, args):
    """`cc` / `cxx`: zig for compiles, pymode-ld for `-shared` links."""
    variable = "PYMODE_ZIG_CC" if mode == "cc" else "PYMODE_ZIG_CXX"
    zig, pymode_ld = os.environ.get(variable), os.environ.get("PYMODE_LD")
    if not zig or not pymode_ld:
        sys.exit(f"pymode_build_ext.py {mode}: {variable} and PYMODE_LD must be set")
    expanded = expand_response_files(args)
    if "-shared" in expanded and "-c" not in expanded:
        argv = ldshared_argv(args, pymode_ld, os.environ.get("PYMODE_CXX_RUNTIME"))
        print("pymode-ld:", shlex.join(argv[1:]), file=sys.stderr)
        os.execv(pymode_ld, argv)
    os.execv(zig, [zig, *args, *_CXX_THREADS_FLAGS])


def ar_main(args):
    """`ar`: zig ar, but never a thin archive.

    meson asks for thin archives (`csrDT`) when `ar -h` lists `T`, as zig's does; a thin
    archive holds paths instead of members, and pymode-ld reads only regular archives.
    """
    zar = os.environ.get("PYMODE_ZIG_AR")
    if not zar:
        sys.exit("pymode_build_ext.py ar: PYMODE_ZIG_AR must be set")
    args = list(args)
    if args and not args[0].startswith("-") and "T" in args[0] and args[0] not in ("-h", "--help"):
        args[0] = args[0].replace("T", "")
    elif args and args[0].startswith("-") and "T" in args[0][1:] and not args[0].startswith("--"):
        args[0] = args[0].replace("T", "")
    os.execv(zar, [zar, *args])


def write_compiler_wrappers(directory):
    """One-word `pymode-cc` / `pymode-c++` / `pymode-ar` scripts (build systems split CC on spaces)."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for mode, name in (("cc", "pymode-cc"), ("cxx", "pymode-c++"), ("ar", "pymode-ar")):
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(__file__))} {mode} \"$@\"\n")
        os.chmod(path, 0o755)
        paths[mode] = path
    return paths


def load_recipe(path):
    if not path:
        return {}
    import tomllib

    with open(path, "rb") as f:
        recipe = tomllib.load(f)
    if not str(recipe.get("why", "")).strip():
        sys.exit(f"{path}: a recipe must say `why` it exists")
    return recipe


def cross_environment(opts, recipe):
    """The environment a setuptools build reads its toolchain from."""
    for name in ("CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDSHARED", "LDCXXSHARED", "AR", "ARFLAGS", "RANLIB"):
        os.environ.pop(name, None)
    cflags = ["-O2", "-g0", "-fPIC", "-DNDEBUG"]
    ldflags = []
    for name, directory in opts.static:
        cflags.append(f"-I{os.path.join(directory, 'include')}")
        ldflags.append(f"-L{os.path.join(directory, 'lib')}")
    cflags.extend(recipe.get("cflags", []))
    wrappers = write_compiler_wrappers(os.path.join(os.path.abspath(opts.wheel_dir), ".pymode-bin"))
    os.environ.update(
        {
            "CC": wrappers["cc"],
            "CXX": wrappers["cxx"],
            "CFLAGS": " ".join(cflags),
            "CXXFLAGS": " ".join(cflags),
            "LDSHARED": f"{wrappers['cc']} -shared",
            "LDCXXSHARED": f"{wrappers['cxx']} -shared",
            "LDFLAGS": " ".join(ldflags),
            "AR": wrappers["ar"],
            "ARFLAGS": "rcs",
            "PYMODE_ZIG_CC": opts.cc,
            "PYMODE_ZIG_CXX": opts.cxx,
            "PYMODE_ZIG_AR": opts.ar,
            "PYMODE_LD": opts.pymode_ld,
        }
    )
    if opts.cxx_runtime:
        os.environ["PYMODE_CXX_RUNTIME"] = opts.cxx_runtime
    for name, value in recipe.get("env", {}).items():
        os.environ[name] = str(value)
    return wrappers


def long_double_format(cc):
    """meson's `longdouble_format` for the target, from the compiler's own predefined macros.

    numpy asks meson for it with `cc.run()`, which cannot run a wasm program here; wasm32's
    `long double` is IEEE binary128 (113-bit mantissa, 16 bytes), little-endian.
    """
    import subprocess

    out = subprocess.run([cc, "-dM", "-E", "-x", "c", os.devnull], capture_output=True, text=True, check=True).stdout
    macros = dict(line.split(" ", 2)[1:] for line in out.splitlines() if line.count(" ") >= 2)
    formats = {("16", "113"): "IEEE_QUAD_LE", ("8", "53"): "IEEE_DOUBLE_LE"}
    key = (macros.get("__SIZEOF_LONG_DOUBLE__"), macros.get("__LDBL_MANT_DIG__"))
    if key not in formats:
        sys.exit(f"{cc}: unknown long double (size {key[0]}, mantissa {key[1]} bits)")
    return formats[key]


def meson_cross_file(opts, wrappers):
    """Writes the meson cross file for wasm32-wasi next to the wrappers; returns its path.

    `system = 'wasi'` (meson names wasm executables `.js` when system starts with `wasm`);
    `needs_exe_wrapper`: nothing built can run on the host, so meson skips `cc.run()` checks
    and its sanity check runs nothing; pkg-config sees only the wasm prefix's `.pc` files, so no
    host library is ever found.
    """
    import shutil

    pkg_config = shutil.which("pkg-config") or shutil.which("pkgconf")
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(opts.include)))
    pc_dir = os.path.join(prefix, "lib", "pkgconfig")
    os.environ["PKG_CONFIG_LIBDIR"] = pc_dir
    os.environ.pop("PKG_CONFIG_PATH", None)

    def quote(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    lines = [
        "[host_machine]",
        "system = 'wasi'",
        "cpu_family = 'wasm32'",
        "cpu = 'wasm32'",
        "endian = 'little'",
        "",
        "[binaries]",
        f"c = {quote(wrappers['cc'])}",
        f"cpp = {quote(wrappers['cxx'])}",
        f"ar = {quote(wrappers['ar'])}",
    ]
    if pkg_config:
        lines.append(f"pkg-config = {quote(pkg_config)}")
    lines += [
        "",
        "[properties]",
        "needs_exe_wrapper = true",
        "skip_sanity_check = true",
        f"longdouble_format = {quote(long_double_format(opts.cc))}",
        f"pkg_config_libdir = [{quote(pc_dir)}]",
        "",
    ]
    path = os.path.join(os.path.dirname(wrappers["cc"]), "wasm32-wasi.meson.cross")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def config_settings_for(backend_name, recipe, cross_file, wheel_dir):
    """The PEP 517 config settings: the recipe's (a value may be a list), plus, for
    meson-python, the cross file and a build directory kept for its logs."""
    settings = {}
    for key, value in recipe.get("config-settings", {}).items():
        settings[key] = [str(v) for v in value] if isinstance(value, list) else str(value)
    if backend_name.split(".")[0] == "mesonpy":
        setup_args = settings.get("setup-args", [])
        if isinstance(setup_args, str):
            setup_args = [setup_args]
        settings["setup-args"] = [f"--cross-file={cross_file}", *setup_args]
        settings.setdefault("build-dir", os.path.join(wheel_dir, ".meson-build"))
    return settings


def target_python_include(include):
    """Points distutils' `get_python_inc` at the wasm CPython's headers.

    Without this, build_ext adds the host interpreter's include directory; the target's comes
    first on the command line, but the host's pyconfig.h should not be reachable at all.
    A backend other than setuptools (flit, hatchling, meson-python) does not use distutils.
    """
    try:
        import setuptools  # noqa: F401 (installs setuptools' distutils)
        from setuptools._distutils import sysconfig as distutils_sysconfig
    except ImportError:
        return

    def get_python_inc(plat_specific=False, prefix=None):
        return include

    distutils_sysconfig.get_python_inc = get_python_inc


def check_target_config():
    import sysconfig

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not suffix or "wasm32-wasi" not in suffix:
        sys.exit(f"sysconfig is not the wasm CPython's (EXT_SUFFIX={suffix!r}): is _PYTHON_SYSCONFIGDATA_NAME set?")
    return suffix


def build_system(source):
    """The `[build-system]` table of the tree's pyproject.toml, with setuptools' legacy backend
    when it names none (PEP 517)."""
    import tomllib

    pyproject = os.path.join(source, "pyproject.toml")
    system = {}
    if os.path.isfile(pyproject):
        with open(pyproject, "rb") as f:
            system = tomllib.load(f).get("build-system", {})
    system.setdefault("build-backend", "setuptools.build_meta:__legacy__")
    return system


def load_backend(source):
    """Imports the package's own PEP 517 backend, from its source tree."""
    import importlib

    system = build_system(source)
    backend_name = system["build-backend"]
    for path in reversed(system.get("backend-path", [])):
        sys.path.insert(0, os.path.join(source, path))
    os.chdir(source)
    sys.path.insert(0, source)
    module_name, _, attr = backend_name.partition(":")
    backend = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        backend = getattr(backend, part)
    return backend


def unsatisfied(requirements):
    """The requirements the running environment does not satisfy."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None
    missing = []
    for text in requirements:
        if Requirement is not None:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate():
                continue
            try:
                if req.specifier.contains(metadata.version(req.name), prereleases=True):
                    continue
            except metadata.PackageNotFoundError:
                pass
        else:
            name = text.split(";")[0].strip()
            for sep in "<>=!~[ ":
                name = name.split(sep)[0]
            try:
                metadata.version(name)
                continue
            except metadata.PackageNotFoundError:
                pass
        missing.append(text)
    return missing


def check_side_modules(zf, extensions, backend_name):
    """Every extension module in the wheel must be a wasm module: a backend that ignores CC
    and LDSHARED (maturin and setuptools-rust run cargo for the host) names a host shared
    object with the wasm suffix, which would only fail at import, in the user's program."""
    kinds = {b"\x7fELF": "an ELF shared object", b"\xcf\xfa\xed\xfe": "a Mach-O file", b"MZ": "a PE file"}
    for name in extensions:
        with zf.open(name) as f:
            head = f.read(4)
        if head != b"\0asm":
            kind = next((k for magic, k in kinds.items() if head.startswith(magic)), "not a WebAssembly module")
            sys.exit(f"error: {name} is {kind}, not a wasm32 side module: the build backend ({backend_name}) compiled it for the host")


def build_wheel(backend, wheel_dir, config_settings):
    os.makedirs(wheel_dir, exist_ok=True)
    name = backend.build_wheel(wheel_dir, config_settings or None)
    return os.path.join(wheel_dir, name)


def install(wheel, site, suffix):
    """Unpacks the wheel into a site-packages directory (its `.data/purelib|platlib` too)."""
    extensions = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            target = os.path.join(site, *parts)
            if info.is_dir():
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                dst.write(src.read())
            if target.endswith(suffix):
                extensions.append(os.path.relpath(target, site))
    return extensions


def wheel_main(args):
    parser = argparse.ArgumentParser(prog="pymode_build_ext.py wheel")
    parser.add_argument("--source", required=True)
    parser.add_argument("--wheel-dir", required=True)
    parser.add_argument("--site")
    parser.add_argument("--result", required=True, help="where to write the result as JSON")
    parser.add_argument("--requires-out")
    parser.add_argument("--include", required=True, help="the wasm CPython's include/python3.13")
    parser.add_argument("--cc", required=True, help="zig cc for wasm32-wasi, one word")
    parser.add_argument("--cxx", required=True, help="zig c++ for wasm32-wasi, one word")
    parser.add_argument("--ar", required=True, help="zig ar, one word")
    parser.add_argument("--pymode-ld", required=True)
    parser.add_argument("--recipe")
    parser.add_argument("--cxx-runtime", help="PyMode's libc++.a, linked into every side module that needs it")
    parser.add_argument("--static", action="append", default=[], type=lambda s: tuple(s.split("=", 1)),
                        help="NAME=DIR: a static library built for wasm32-wasi (DIR/include, DIR/lib)")
    opts = parser.parse_args(args)
    recipe = load_recipe(opts.recipe)
    wrappers = cross_environment(opts, recipe)
    suffix = check_target_config()
    target_python_include(opts.include)
    start = time.monotonic()
    wheel_dir = os.path.abspath(opts.wheel_dir)
    cross_file = meson_cross_file(opts, wrappers)
    config_settings = config_settings_for(build_system(os.path.abspath(opts.source))["build-backend"], recipe, cross_file, wheel_dir)
    backend = load_backend(os.path.abspath(opts.source))
    if opts.requires_out and hasattr(backend, "get_requires_for_build_wheel"):
        missing = unsatisfied(backend.get_requires_for_build_wheel(config_settings or None))
        if missing:
            with open(opts.requires_out, "w") as f:
                f.write("\n".join(missing) + "\n")
            print("the backend asks for build requirements the environment lacks:", ", ".join(missing))
            sys.exit(3)
    wheel = build_wheel(backend, wheel_dir, config_settings)
    with zipfile.ZipFile(wheel) as zf:
        extensions = [n for n in zf.namelist() if n.endswith(suffix)]
        check_side_modules(zf, extensions, build_system(os.path.abspath(opts.source))["build-backend"])
    if opts.site:
        install(wheel, opts.site, suffix)
    seconds = time.monotonic() - start
    print(f"wheel {wheel}")
    for ext in extensions:
        print(f"extension {ext}")
    print(f"seconds {seconds:.1f}")
    import json

    with open(opts.result, "w") as f:
        json.dump({"wheel": wheel, "extensions": extensions, "seconds": seconds}, f)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("wheel", "cc", "cxx", "ar"):
        sys.exit(__doc__)
    if sys.argv[1] == "ar":
        ar_main(sys.argv[2:])
    elif sys.argv[1] in ("cc", "cxx"):
        compiler_main(sys.argv[1], sys.argv[2:])
    else:
        wheel_main(sys.argv[2:])


if __name__ == "__main__":
    main()
