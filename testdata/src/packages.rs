//! The extension packages PyMode builds from their sdists and proves with their own test
//! suites inside the wasm CPython (`cargo xtask build-ext NAME`, `loader/tests/all/packages.rs`).
//!
//! The table is the package *test* catalogue: each build by name and version, and what the
//! tests need to know about it: what it needs at run time, how to prove its C extension is the
//! code in use, and how its own suite runs. How a package *builds* is not here: `pymode-build`
//! runs the package's own PEP 517 backend with its own build requirements, plus a recipe
//! (`build/recipes/`) only where that is not enough.

use crate::{cache_dir, ext_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One package: see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// The distribution name, as pip spells it.
    pub name: &'static str,
    /// The pinned version.
    pub version: &'static str,
    /// The top-level import package.
    pub import_name: &'static str,
    /// Packages of this table its code imports at run time (their sites go on the path);
    /// pure-Python ones go in `test_requirements`.
    pub needs: &'static [&'static str],
    /// Pure-Python requirements of the test suite in the wasm CPython (beyond pytest).
    pub test_requirements: &'static [&'static str],
    /// The extension modules the suite must have imported from our side modules.
    pub extensions: &'static [&'static str],
    /// Python source that prints one line and exits non-zero unless the compiled extension
    /// is the code in use (run in the wasm CPython before the suite).
    pub c_check: &'static str,
    /// The suite: `pytest` arguments; the unpacked sdist is mounted at `/src`. Empty for a
    /// package whose sdist ships no tests: then only `c_check` runs.
    pub suite: &'static [&'static str],
    /// The fast subset `cargo xtask test` runs (the full suite runs with `--full`).
    pub fast: &'static [&'static str],
    /// A directory of the sdist the suite needs on its own, at `/suite/<dir>` (a test
    /// package whose parent must not be the sdist root); `build-ext` copies it to
    /// [`Package::suite_copy`].
    pub tests_alone: Option<&'static str>,
    /// pytest arguments added in the wasm CPython only (deselections), each with the WASI
    /// reason. A `-k` expression here replaces the suite's.
    pub wasi_skip: &'static [(&'static str, &'static str)],
    /// Environment for the suite (both natively and in wasm).
    pub env: &'static [(&'static str, &'static str)],
    /// A row of the 20-package table (docs/packages.md, "Beyond the table"): it is built, and
    /// its suite run, only by `cargo xtask test --full` (`PYMODE_FULL=1`), `cargo xtask
    /// build-ext NAME` and `cargo xtask package-table`. Without `PYMODE_FULL=1` its trial is
    /// listed as ignored (kind `full`), so the default `cargo xtask test`, CI's, costs what
    /// it did before these rows. Run with `PYMODE_FULL=1`, an unbuilt row fails, as every row
    /// does.
    pub full_only: bool,
    /// A package that does not build for wasm32-wasi: `build-ext` checks that its build still
    /// fails with that message, and it has no suite trial.
    pub build_fails: Option<BuildFailure>,
}

/// Why a package of the table cannot be built (see [`Package::build_fails`]).
#[derive(Debug, Clone, Copy)]
pub struct BuildFailure {
    /// Text the build's error or log must contain.
    pub error: &'static str,
    /// Why: a WASI limitation, or what is missing on our side.
    pub why: &'static str,
}

/// Every package, in build order (a package's `needs` come before it).
pub const PACKAGES: &[Package] = &[
    Package {
        name: "markupsafe",
        version: crate::MARKUPSAFE_VERSION,
        import_name: "markupsafe",
        extensions: &["markupsafe._speedups"],
        needs: &[],
        test_requirements: &[],
        c_check: "import markupsafe, markupsafe._speedups as s; print(s.__file__); raise SystemExit(markupsafe._escape_inner is not s._escape_inner)",
        suite: &["/src/tests"],
        fast: &["/src/tests"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "regex",
        version: "2026.11.19",
        import_name: "regex",
        extensions: &["regex._regex"],
        needs: &[],
        test_requirements: &[],
        // regex has no pure-Python fallback: importing it at all means `_regex` loaded.
        c_check: "import regex, regex._regex as c; print(c.__file__); raise SystemExit(regex.sub(r'(?i)s+', lambda m: m.group().upper(), 'SsS!') != 'SSS!')",
        // The tests are installed with the package; the source tree's copy would import the
        // uncompiled source package. `test_main` is `unittest.main()` collected as a test.
        suite: &["--pyargs", "regex.tests.test_regex", "-k", "not test_main"],
        fast: &["--pyargs", "regex.tests.test_regex", "-k", "not test_main and not test_shared_iterators"],
        tests_alone: None,
        wasi_skip: &[("-k=not test_main and not test_shared_iterators", "test_shared_iterators starts threads")],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "pyyaml",
        version: "6.0.4",
        import_name: "yaml",
        extensions: &["yaml._yaml"],
        needs: &[],
        test_requirements: &[],
        c_check: "import yaml, yaml._yaml as c; print(c.__file__, c.get_version_string()); raise SystemExit(not yaml.__with_libyaml__)",
        suite: &["/src/tests", "--import-mode=prepend"],
        fast: &[
            "/src/tests/legacy_tests/test_yaml_ext.py",
            "/src/tests/test_libyaml_recursion_control.py",
            "/src/tests/test_merge.py",
            "--import-mode=prepend",
        ],
        tests_alone: None,
        wasi_skip: &[],
        // The suite's conftest raises if the C extension does not import.
        env: &[("PYYAML_FORCE_LIBYAML", "1")],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "zstandard",
        version: "0.25.0",
        import_name: "zstandard",
        extensions: &["zstandard.backend_c"],
        needs: &[],
        test_requirements: &[],
        c_check: "import zstandard as z; print(z.backend_c.__file__, z.backend, sorted(z.backend_features)); raise SystemExit(z.backend != 'cext' or z.compress(b'x' * 1000) == b'')",
        suite: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite"],
        fast: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite"],
        // `tests` is a package: run from the sdist, pytest would put the sdist root, and its
        // uncompiled `zstandard/`, first on sys.path.
        tests_alone: Some("tests"),
        // `--deselect` matches node id prefixes and would also drop test_multithreaded_dict
        // and test_multithreaded_compression_params, which pass without threads.
        wasi_skip: &[(
            "-k=not (test_multithreaded and not test_multithreaded_dict and not test_multithreaded_compression_params) \
              and not (TestDecompressor_multi_decompress_to_buffer and (test_buffer_with_segments_collection_input or test_item_failure))",
            "threads=N: zstd's worker pool needs pthread_create, which fails under WASI (test_multithreaded of \
             compress, compressobj, copy_stream, read_to_iter, stream_writer; multi_decompress_to_buffer's \
             test_buffer_with_segments_collection_input and test_item_failure)",
        )],
        env: &[("PYTHON_ZSTANDARD_IMPORT_POLICY", "cext")],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "multidict",
        version: "7.2.1",
        import_name: "multidict",
        extensions: &["multidict._multidict", "multidict._testcapi"],
        needs: &[],
        // hypothesis runs in the wasm CPython since asyncio imports (issue 15), so its
        // property tests run in both runs.
        test_requirements: &[crate::HYPOTHESIS],
        c_check: "import multidict, multidict._multidict as c; print(c.__file__); raise SystemExit(multidict.MultiDict is not c.MultiDict)",
        suite: &[
            "/src/tests",
            "--import-mode=prepend",
            "--ignore=/src/tests/test_multidict_benchmarks.py",
            "--ignore=/src/tests/test_views_benchmarks.py",
            "--ignore=/src/tests/test_watched_benchmarks.py",
        ],
        fast: &[
            "/src/tests",
            "--import-mode=prepend",
            "-m",
            "c_extension",
            "--ignore=/src/tests/test_multidict_benchmarks.py",
            "--ignore=/src/tests/test_views_benchmarks.py",
            "--ignore=/src/tests/test_watched_benchmarks.py",
        ],
        tests_alone: None,
        wasi_skip: &[
            ("--ignore=/src/tests/test_leaks.py", "runs scripts in a subprocess"),
            ("--ignore=/src/tests/test_circular_imports.py", "runs the interpreter in a subprocess"),
            ("--ignore=/src/tests/test_free_threading.py", "starts threads"),
            ("--ignore=/src/tests/test_hypothesis_concurrency.py", "starts threads"),
            (
                "-k=not thread_safety and not another_thread and not across_threads and not lookups_race and not torn_down_with_its_module and not registration_churn_races_delivery",
                "these start threads (torn_down_with_its_module: a subprocess)",
            ),
        ],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "propcache",
        version: "0.5.4",
        import_name: "propcache",
        extensions: &["propcache._helpers_c"],
        needs: &[],
        test_requirements: &[],
        c_check: "import propcache._helpers as h, propcache._helpers_c as c; print(c.__file__); raise SystemExit(h.cached_property is not c.cached_property)",
        // test_pep517_backend tests the in-tree build backend (it needs setuptools and a C
        // compiler), not the extension; test_benchmarks needs pytest-codspeed.
        suite: &[
            "/src/tests",
            "--import-mode=prepend",
            "--ignore=/src/tests/test_benchmarks.py",
            "--ignore=/src/tests/test_pep517_backend.py",
        ],
        fast: &[
            "/src/tests",
            "--import-mode=prepend",
            "--ignore=/src/tests/test_benchmarks.py",
            "--ignore=/src/tests/test_pep517_backend.py",
        ],
        tests_alone: None,
        wasi_skip: &[("-k=not concurrent_eviction", "starts threads")],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "frozenlist",
        version: "1.8.0",
        import_name: "frozenlist",
        extensions: &["frozenlist._frozenlist"],
        needs: &[],
        test_requirements: &[],
        c_check: "import frozenlist, frozenlist._frozenlist as c; print(c.__file__); raise SystemExit(frozenlist.FrozenList is not c.FrozenList)",
        suite: &["/src/tests", "--import-mode=prepend"],
        fast: &["/src/tests", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "yarl",
        version: "1.25.1",
        import_name: "yarl",
        extensions: &["yarl._quoting_c"],
        needs: &["multidict", "propcache"],
        // hypothesis for test_quoting_hypothesis.py, which skips without it.
        test_requirements: &["idna==3.20", crate::HYPOTHESIS],
        c_check: "import yarl, yarl._quoting as q, yarl._quoting_c as c; print(c.__file__); raise SystemExit(q._Quoter is not c._Quoter)",
        suite: &[
            "/src/tests",
            "--import-mode=prepend",
            "--ignore=/src/tests/test_quoting_benchmarks.py",
            "--ignore=/src/tests/test_url_benchmarks.py",
            "--ignore=/src/tests/test_query_benchmarks.py",
        ],
        fast: &[
            "/src/tests/test_quoting.py",
            "/src/tests/test_query_to_pairs.py",
            "/src/tests/test_url_parsing.py",
            "/src/tests/test_url_query.py",
            "/src/tests/test_url_build.py",
            "--import-mode=prepend",
        ],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    Package {
        name: "ujson",
        version: "6.1.0",
        import_name: "ujson",
        extensions: &["ujson"],
        needs: &[],
        test_requirements: &[],
        // ujson is C with a C++ part (double-conversion formats and parses floats), so the
        // float round trip runs libc++ code in the side module.
        c_check: "import ujson; print(ujson.__file__); s = ujson.dumps([1, 2.5, 0.1, 1e300]); print(s); raise SystemExit(s != '[1,2.5,0.1,1e+300]' or ujson.loads(s)[2] != 0.1)",
        suite: &["/src/tests", "--import-mode=prepend"],
        fast: &["/src/tests", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: false,
        build_fails: None,
    },
    // The 20-package table of docs/packages.md ("Beyond the table"), less numpy and contourpy
    // (meson-python) and ujson (above): built, and their suites run, only under `--full`.
    Package {
        name: "greenlet",
        version: "3.5.6",
        import_name: "greenlet",
        extensions: &["greenlet._greenlet"],
        needs: &[],
        test_requirements: &[],
        c_check: "",
        suite: &[],
        fast: &[],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: Some(BuildFailure {
            error: "greenlet needs to be ported to this platform",
            why: "greenlet switches C stacks with assembly written for each platform (slp_switch); wasm code cannot \
                  read or move its own call stack, so there is nothing to port it to",
        }),
    },
    Package {
        name: "wrapt",
        version: "2.5.2",
        import_name: "wrapt",
        extensions: &["wrapt._wrappers"],
        needs: &[],
        test_requirements: &[],
        c_check: "import wrapt, wrapt.__wrapt__ as w, wrapt._wrappers as c; print(c.__file__); raise SystemExit(not w._using_c_extension or w.FunctionWrapper is not c.FunctionWrapper)",
        suite: &["/src/tests", "--import-mode=prepend"],
        fast: &["/src/tests", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "websockets",
        version: "17.4",
        import_name: "websockets",
        extensions: &["websockets.speedups"],
        needs: &[],
        test_requirements: &[],
        c_check: "import websockets.speedups as c, websockets.frames as f; print(c.__file__); raise SystemExit(c.apply_mask(b'abcd', b'\\x01\\x02\\x03\\x04') != b'`` g`')",
        suite: &[],
        fast: &[],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "sqlalchemy",
        version: "2.1.9",
        import_name: "sqlalchemy",
        extensions: &[
            "sqlalchemy.engine._processors_cy",
            "sqlalchemy.engine._result_cy",
            "sqlalchemy.engine._row_cy",
            "sqlalchemy.engine._util_cy",
            "sqlalchemy.sql._util_cy",
            "sqlalchemy.util._collections_cy",
            "sqlalchemy.util._immutabledict_cy",
        ],
        needs: &[],
        test_requirements: &["typing-extensions==4.15.0"],
        c_check: "import sqlalchemy.util._has_cython as h, sqlalchemy.engine._row_cy as c; print(c.__file__, h._CYEXTENSION_MSG); raise SystemExit(not h.HAS_CYEXTENSION)",
        // test/conftest.py puts the sdist's uncompiled `lib` first on sys.path unless user
        // site-packages are off (PYTHONNOUSERSITE); REQUIRE_SQLALCHEMY_CEXT makes its plugin
        // refuse to run without the compiled modules.
        suite: &["/src/test/base", "/src/test/engine", "/src/test/sql", "--import-mode=prepend"],
        fast: &["/src/test/base", "/src/test/engine", "/src/test/sql", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[("PYTHONNOUSERSITE", "1"), ("REQUIRE_SQLALCHEMY_CEXT", "1")],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "coverage",
        version: "7.17.5",
        import_name: "coverage",
        extensions: &["coverage.tracer"],
        needs: &[],
        test_requirements: &["flaky==3.8.1", crate::HYPOTHESIS],
        c_check: "import coverage, coverage.core as core; print(core.CTRACER_FILE); cov = coverage.Coverage(data_file=None); cov.start(); cov.stop(); print(cov._collector.tracer_name()); raise SystemExit(cov._collector.tracer_name() != 'CTracer')",
        // `tests` is a package that imports itself as `tests` (see httptools); its pytest
        // settings (`python_classes = *Test`, ...) stay in the sdist's pyproject.toml.
        suite: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite", "--config-file=/src/pyproject.toml"],
        fast: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite", "--config-file=/src/pyproject.toml"],
        tests_alone: Some("tests"),
        wasi_skip: &[],
        env: &[("COVERAGE_CORE", "ctrace")],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "msgpack",
        version: "1.2.4",
        import_name: "msgpack",
        extensions: &["msgpack._cmsgpack"],
        needs: &[],
        test_requirements: &[],
        c_check: "import msgpack, msgpack._cmsgpack as c; print(c.__file__); raise SystemExit(msgpack.Packer is not c.Packer or msgpack.unpackb(msgpack.packb([1, 'a'])) != [1, 'a'])",
        suite: &["/src/test", "--import-mode=prepend"],
        fast: &["/src/test", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "httptools",
        version: "0.9.0",
        import_name: "httptools",
        extensions: &["httptools.parser.parser", "httptools.parser.url_parser"],
        needs: &[],
        test_requirements: &[],
        c_check: "import httptools, httptools.parser.parser as c; print(c.__file__); u = httptools.parse_url(b'http://a.b:8/p?q'); raise SystemExit(httptools.HttpRequestParser is not c.HttpRequestParser or u.port != 8)",
        // `tests` is a package: run from the sdist, the sdist root and its uncompiled
        // `httptools/` would come first on sys.path.
        suite: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite"],
        fast: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite"],
        tests_alone: Some("tests"),
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "kiwisolver",
        version: "1.5.1",
        import_name: "kiwisolver",
        extensions: &["kiwisolver._cext"],
        needs: &[],
        test_requirements: &[],
        c_check: "import kiwisolver, kiwisolver._cext as c; print(c.__file__); x, y = kiwisolver.Variable('x'), kiwisolver.Variable('y'); s = kiwisolver.Solver(); s.addConstraint(x + y == 20); s.addConstraint(x == y + 4); s.updateVariables(); print(x.value(), y.value()); raise SystemExit(kiwisolver.Solver is not c.Solver or (x.value(), y.value()) != (12.0, 8.0))",
        suite: &["/src/py/tests", "--import-mode=prepend"],
        fast: &["/src/py/tests", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[(
            "-k=not test_managing_edit_variable and not test_managing_constraints and not test_dumping_solver",
            "these check the errors kiwi's C++ throws (DuplicateEditVariable, DuplicateConstraint, UnsatisfiableConstraint, ...): \
             wasm32-wasi has no C++ exceptions, so the throw ends the interpreter (`C++ exception of type \
             kiwi::DuplicateEditVariable thrown: wasm32-wasi has no exception support`, then a trap in _cext)",
        )],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "xxhash",
        version: "4.1.0",
        import_name: "xxhash",
        extensions: &["xxhash._xxhash"],
        needs: &[],
        test_requirements: &[],
        c_check: "import xxhash, xxhash._xxhash as c; print(c.__file__); raise SystemExit(xxhash.xxh64 is not c.xxh64 or xxhash.xxh64_hexdigest(b'a') != 'd24ec4f1a98c6e5b')",
        // `tests` is a package: see httptools.
        suite: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite"],
        fast: &["/suite/tests", "--import-mode=prepend", "--rootdir=/suite"],
        tests_alone: Some("tests"),
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "lz4",
        version: "4.4.5",
        import_name: "lz4",
        extensions: &["lz4.block._block", "lz4.frame._frame"],
        needs: &[],
        test_requirements: &[],
        c_check: "import lz4.frame, lz4.frame._frame as c, lz4.block; print(c.__file__); d = b'pymode' * 100; raise SystemExit(lz4.frame.decompress(lz4.frame.compress(d)) != d or lz4.block.decompress(lz4.block.compress(d)) != d)",
        // test_block_2.py imports psutil (a C extension, built for neither run here) to skip
        // its 4 GiB cases on small hosts; it is left out of both runs.
        suite: &["/src/tests/block", "/src/tests/frame", "--import-mode=prepend", "--ignore=/src/tests/block/test_block_2.py"],
        fast: &["/src/tests/block", "/src/tests/frame", "--import-mode=prepend", "--ignore=/src/tests/block/test_block_2.py"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "ruamel.yaml.clib",
        version: "0.2.15",
        import_name: "_ruamel_yaml",
        extensions: &["_ruamel_yaml"],
        needs: &[],
        test_requirements: &[],
        c_check: "import _ruamel_yaml as c; print(c.__file__, c.get_version_string()); raise SystemExit(not c.get_version_string())",
        suite: &[],
        fast: &[],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "brotli",
        version: "1.2.1",
        import_name: "brotli",
        extensions: &["_brotli"],
        needs: &[],
        test_requirements: &[],
        c_check: "import brotli, _brotli; print(_brotli.__file__); d = b'pymode' * 100; raise SystemExit(brotli.Compressor is not _brotli.Compressor or brotli.decompress(brotli.compress(d)) != d)",
        // The tests are `*_test.py`; they read tests/testdata of the sdist.
        suite: &["/src/python/tests", "--import-mode=prepend", "-o", "python_files=*_test.py"],
        fast: &["/src/python/tests", "--import-mode=prepend", "-o", "python_files=*_test.py"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "setproctitle",
        version: "1.3.8",
        import_name: "setproctitle",
        extensions: &["setproctitle._setproctitle"],
        needs: &[],
        test_requirements: &[],
        c_check: "import setproctitle, setproctitle._setproctitle as c; print(c.__file__); setproctitle.setproctitle('pymode'); print(setproctitle.getproctitle()); raise SystemExit(setproctitle.setproctitle is not c.setproctitle)",
        suite: &["/src/tests", "--import-mode=prepend"],
        fast: &["/src/tests", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "mmh3",
        version: "5.3.1",
        import_name: "mmh3",
        extensions: &["mmh3"],
        needs: &[],
        test_requirements: &[],
        // mmh3 is the extension module itself, so importing it at all means it loaded.
        c_check: "import mmh3; print(mmh3.__file__); raise SystemExit(mmh3.hash('foo') != -156908512)",
        // test_mmh3.py and test_mmh3_hasher.py import `helper`, which the sdist does not ship
        // (tests/helper.py is missing from it): both runs leave them out.
        suite: &["/src/tests", "--import-mode=prepend", "--ignore=/src/tests/test_mmh3.py", "--ignore=/src/tests/test_mmh3_hasher.py"],
        fast: &["/src/tests", "--import-mode=prepend", "--ignore=/src/tests/test_mmh3.py", "--ignore=/src/tests/test_mmh3_hasher.py"],
        tests_alone: None,
        wasi_skip: &[(
            "--ignore=/src/tests/test_free_threading.py",
            "starts threads: `RuntimeError: can't start new thread` (no threads in wasm32-wasi)",
        )],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "simplejson",
        version: "4.3.0",
        import_name: "simplejson",
        extensions: &["simplejson._speedups"],
        needs: &[],
        test_requirements: &[],
        c_check: "import simplejson, simplejson._speedups as c; print(c.__file__); raise SystemExit(simplejson._import_c_make_encoder() is not c.make_encoder or simplejson.loads('[1.5]') != [1.5])",
        // The tests are installed with the package (the sdist's copy would import the
        // uncompiled source package).
        suite: &["--pyargs", "simplejson.tests"],
        fast: &["--pyargs", "simplejson.tests"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "zope.interface",
        version: "8.7",
        import_name: "zope.interface",
        extensions: &["zope.interface._zope_interface_coptimizations"],
        needs: &[],
        test_requirements: &["zope.event==6.1", "zope.testing==6.0"],
        c_check: "import zope.interface.declarations as d, zope.interface._zope_interface_coptimizations as c; print(c.__file__); raise SystemExit(d.implementedBy is not c.implementedBy)",
        // The tests are installed with the package. PURE_PYTHON=0 makes it fail rather than
        // fall back to Python when the C optimizations do not import.
        suite: &["--pyargs", "zope.interface"],
        fast: &["--pyargs", "zope.interface"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[("PURE_PYTHON", "0")],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "msgspec",
        version: "0.23.0",
        import_name: "msgspec",
        extensions: &["msgspec._core"],
        needs: &[],
        // Its test-unit group, less msgpack and pyyaml (C extensions; their tests skip in
        // both runs) and coverage.
        test_requirements: &["attrs==25.4.0", "tomli-w==1.2.0", "typing-extensions==4.15.0"],
        c_check: "import msgspec, msgspec._core as c; print(c.__file__); raise SystemExit(msgspec.Struct is not c.Struct or msgspec.json.decode(b'[1, 2]') != [1, 2])",
        suite: &["/src/tests/unit", "--import-mode=prepend"],
        fast: &["/src/tests/unit", "--import-mode=prepend"],
        tests_alone: None,
        wasi_skip: &[],
        env: &[],
        full_only: true,
        build_fails: None,
    },
    Package {
        name: "numpy",
        version: "2.5.5",
        import_name: "numpy",
        // The core, and what the fast subset reaches: linalg, fft, random, and the test
        // module NumPy's conftest imports.
        extensions: &[
            "numpy._core._multiarray_umath",
            "numpy._core._multiarray_tests",
            "numpy.linalg._umath_linalg",
            "numpy.fft._pocketfft_umath",
            "numpy.random._generator",
            "numpy.random.bit_generator",
        ],
        needs: &[],
        // NumPy's conftest imports hypothesis.
        test_requirements: &[crate::HYPOTHESIS],
        // The C and C++ parts in use: the core's file is our side module, `unique` (C++ with
        // a hash set), pocketfft (C++), lapack_lite through linalg, the random generators.
        c_check: "import numpy as np, numpy._core._multiarray_umath as m; print(m.__file__); \
                  ok = np.unique([3, 1, 3]).tolist() == [1, 3] and abs(np.fft.fft([1.0, 2.0, 3.0, 4.0])[0] - 10) < 1e-12 \
                  and abs(np.linalg.det([[2.0, 1.0], [1.0, 3.0]]) - 5) < 1e-12 and np.random.default_rng(7).integers(0, 10, 5).shape == (5,) \
                  and np.sort(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 2.0, 3.0]; raise SystemExit(not ok)",
        // The tests are installed with the package (meson's `tests` install tag, NumPy's
        // default); its pytest.ini (markers, `filterwarnings = error`) is the sdist's. Imported
        // as packages (prepend): under importlib mode pytest would import the sdist's own
        // uncompiled `numpy/` beside the installed one, whose core refuses a second load.
        suite: &["-c", "/src/pytest.ini", "--import-mode=prepend", "--pyargs", "numpy", "-m", "not slow"],
        fast: &[
            "-c",
            "/src/pytest.ini",
            "--import-mode=prepend",
            "-m",
            "not slow",
            "--pyargs",
            "numpy.fft",
            "numpy.linalg",
            "numpy.random.tests.test_generator_mt19937",
            "numpy._core.tests.test_umath",
            "numpy.lib.tests.test_function_base",
        ],
        tests_alone: None,
        wasi_skip: &[(
            "-k=not test_debug_print and not (TestSpecialFloats and (test_exp_exceptions or test_exp2))",
            "test_debug_print uses pytest's capfd, which needs os.dup2 (the wasm CPython has none); its failed set-up also leaves pytest's \
             capture broken, so every later test of the session errors. test_exp_exceptions and test_exp2 expect \
             FloatingPointError from overflow: wasm has no floating-point exception flags (NumPy skips its other such \
             tests itself: \"fp errors don't work in wasm\")",
        )],
        env: &[],
        full_only: false,
        build_fails: None,
    },
];

/// The package named `name`, if the table has it.
pub fn package(name: &str) -> Option<&'static Package> {
    PACKAGES.iter().find(|p| p.name == name)
}

impl Package {
    /// The built site-packages directory (not checked for existence).
    pub fn site(&self) -> PathBuf {
        ext_dir(self.name).join("site")
    }

    /// Where its wheel is written.
    pub fn wheel_dir(&self) -> PathBuf {
        ext_dir(self.name).join("wheels")
    }

    /// The unpacked sdist (its tests run from here).
    pub fn source(&self) -> PathBuf {
        ext_dir(self.name).join("src").join(format!("{}-{}", self.name, self.version))
    }

    /// Where `build-ext` copies [`Package::tests_alone`] (mounted at `/suite`).
    pub fn suite_copy(&self) -> PathBuf {
        ext_dir(self.name).join("suite")
    }

    /// The test suite's pure-Python requirements for the wasm CPython (not checked).
    pub fn test_deps(&self) -> PathBuf {
        cache_dir().join("wasm-site").join(format!("{}-{}-tests", self.name, self.version))
    }

    /// The side modules in its site, relative to it, sorted.
    pub fn side_modules(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_side_modules(&self.site(), &self.site(), &mut out);
        out.sort();
        out
    }
}

fn collect_side_modules(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_side_modules(root, &path, out);
        } else if path.to_string_lossy().ends_with(".cpython-313-wasm32-wasi.so")
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_path_buf());
        }
    }
}

/// What a pytest run reported in its last line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub errors: u32,
    pub xfailed: u32,
    pub xpassed: u32,
    pub deselected: u32,
}

impl Summary {
    /// Parses pytest's final summary line (`=== 3 failed, 10 passed, 1 skipped in 2.0s ===`).
    /// `None` if the output has no such line (pytest did not get to the end).
    pub fn parse(stdout: &str) -> Option<Summary> {
        // `-q` prints it bare, the default surrounded by `=`.
        let line = stdout.lines().rev().map(|l| l.trim_matches(|c| c == '=' || c == ' ')).find(|l| {
            l.starts_with(|c: char| c.is_ascii_digit())
                && l.contains(" in ")
                && ["passed", "failed", "error", "skipped", "deselected"].iter().any(|k| l.contains(k))
        })?;
        let mut s = Summary::default();
        let body = line.rsplit_once(" in ").map_or(line, |(b, _)| b);
        for part in body.split(", ") {
            let mut words = part.split_whitespace();
            let (Some(n), Some(kind)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            match kind {
                "passed" => s.passed = n,
                "failed" => s.failed = n,
                "skipped" => s.skipped = n,
                "error" | "errors" => s.errors = n,
                "xfailed" => s.xfailed = n,
                "xpassed" => s.xpassed = n,
                "deselected" => s.deselected = n,
                _ => {}
            }
        }
        Some(s)
    }
}

/// The non-zero counts as pytest words them: `10 passed, 2 skipped`.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = [
            (self.passed, "passed"),
            (self.failed, "failed"),
            (self.errors, "errors"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
            (self.xpassed, "xpassed"),
            (self.deselected, "deselected"),
        ];
        let words: Vec<String> = counts.iter().filter(|(n, _)| *n > 0).map(|(n, kind)| format!("{n} {kind}")).collect();
        f.write_str(&words.join(", "))
    }
}

/// How a suite is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// [`Package::fast`].
    Fast,
    /// [`Package::suite`].
    Full,
}

/// The pytest arguments for a run inside the wasm CPython (paths under `/src`).
pub fn wasm_pytest_args(pkg: &Package, scope: Scope) -> Vec<String> {
    pytest_args(pkg, scope, true)
}

/// The same suite on the native CPython, for comparison: the arguments of
/// [`wasm_pytest_args`] with the guest paths (`/src`, `/suite`) replaced by the host's and
/// without the WASI deselections.
pub fn native_pytest_args(pkg: &Package, scope: Scope) -> Vec<String> {
    let mounts = [("/src", pkg.source()), ("/suite", pkg.suite_copy())];
    let map = |path: &str| -> Option<String> {
        mounts.iter().find_map(|(guest, host)| {
            let rest = path.strip_prefix(guest)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", host.display()))
        })
    };
    pytest_args(pkg, scope, false)
        .into_iter()
        .map(|arg| match arg.split_once('=') {
            Some((option, value)) if option.starts_with('-') => map(value).map_or(arg.clone(), |v| format!("{option}={v}")),
            _ => map(&arg).unwrap_or(arg),
        })
        .collect()
}

fn pytest_args(pkg: &Package, scope: Scope, wasi: bool) -> Vec<String> {
    let mut args: Vec<String> = ["-m", "pytest"].iter().map(|s| s.to_string()).collect();
    // No cache dir, no faulthandler (WASI delivers no fatal signals for it to catch) and
    // --capture=sys (fd capture needs os.dup2, which the wasm CPython does not have); the
    // native run uses the same options. -rfE lists failures and errors
    // by node id in the summary.
    args.extend(
        [
            "-p",
            "pymode_report",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:faulthandler",
            "--capture=sys",
            "-q",
            "-rfE",
            "-o",
            "addopts=",
            "-W",
            "ignore::pytest.PytestConfigWarning",
            "--rootdir=/src",
            "--import-mode=importlib",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    // The package's own arguments come after these defaults, so they win.
    let targets = if scope == Scope::Fast { pkg.fast } else { pkg.suite };
    args.extend(targets.iter().map(|t| t.to_string()));
    if wasi {
        args.extend(pkg.wasi_skip.iter().map(|(arg, _)| arg.to_string()));
    }
    args
}

/// A pytest plugin (`-p pymode_report`) that lists, at the end of the session, every
/// extension module the suite had imported and its file: the proof that the suite ran over
/// our side modules and not a pure-Python fallback.
///
/// It also lets pytest's `tmp_path` work under WASI: pytest calls `os.getuid()` on every
/// platform but win32 and emscripten, and WASI has no user ids either.
pub const REPORT_PLUGIN: &str = r#"import os
import sys

if not hasattr(os, "getuid"):
    import _pytest.tmpdir

    _pytest.tmpdir.get_user_id = lambda: None

def pytest_sessionfinish(session, exitstatus):
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.endswith(".so"):
            print(f"\npymode-extension {name} {path}")
"#;

/// The extension modules [`REPORT_PLUGIN`] listed in `stdout`, as (module, file).
pub fn reported_extensions(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("pymode-extension "))
        .filter_map(|l| l.split_once(' ').map(|(m, f)| (m.to_owned(), f.to_owned())))
        .collect()
}

/// Writes the directory `wasm_command` mounts at `/`: `dev/null` (pytest opens it), `tmp`
/// (suites write temporary files) and the report plugin.
pub fn prepare_root(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("dev"))?;
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::write(root.join("dev").join("null"), b"")?;
    std::fs::create_dir_all(root.join("plugins"))?;
    std::fs::write(root.join("plugins").join("pymode_report.py"), REPORT_PLUGIN)
}

/// A `pymode-run` command that runs `args` in the wasm CPython with the package, its
/// dependencies, pytest and its sdist (at `/src`) mounted. `root` becomes `/` (it must hold
/// `dev/null`, which pytest opens).
pub fn wasm_command(runner: &Path, pkg: &Package, root: &Path, args: &[String]) -> Command {
    let prefix = crate::cpython_prefix();
    let mut cmd = Command::new(runner);
    cmd.arg("--dir").arg(&prefix);
    let mut path = Vec::new();
    let mount = |cmd: &mut Command, host: &Path, guest: String| {
        cmd.arg("--dir").arg(format!("{}::{guest}", host.display()));
    };
    mount(&mut cmd, root, "/".to_owned());
    mount(&mut cmd, &pkg.source(), "/src".to_owned());
    if pkg.tests_alone.is_some() {
        mount(&mut cmd, &pkg.suite_copy(), "/suite".to_owned());
    }
    for (i, name) in pkg.needs.iter().chain(std::iter::once(&pkg.name)).enumerate() {
        let site = package(name).map_or_else(|| panic!("{}: `needs` names {name}, which is not in PACKAGES", pkg.name), |p| p.site());
        let guest = format!("/site{i}");
        mount(&mut cmd, &site, guest.clone());
        path.insert(0, guest);
    }
    mount(&mut cmd, &root.join("plugins"), "/plugins".to_owned());
    path.push("/plugins".to_owned());
    mount(&mut cmd, &crate::wasm_test_deps(), "/pydeps".to_owned());
    path.push("/pydeps".to_owned());
    if !pkg.test_requirements.is_empty() {
        mount(&mut cmd, &pkg.test_deps(), "/testdeps".to_owned());
        path.push("/testdeps".to_owned());
    }
    cmd.args(["--env", &format!("PYTHONPATH={}", path.join(":")), "--env", "TMPDIR=/tmp"]);
    for (k, v) in pkg.env {
        cmd.args(["--env", &format!("{k}={v}")]);
    }
    cmd.arg("--cache").arg(cache_dir().join("module-cache"));
    cmd.arg(crate::python_wasm()).arg("--").args(args);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_consistent() {
        for (i, pkg) in PACKAGES.iter().enumerate() {
            for need in pkg.needs {
                let at = PACKAGES.iter().position(|p| p.name == *need);
                assert!(at.is_some_and(|at| at < i), "{}: needs {need}, which must come before it", pkg.name);
            }
            for (arg, why) in pkg.wasi_skip {
                assert!(!arg.is_empty() && !why.trim().is_empty(), "{}: a deselection without its reason", pkg.name);
            }
            match pkg.build_fails {
                Some(f) => assert!(pkg.full_only && !f.error.is_empty() && !f.why.trim().is_empty(), "{}", pkg.name),
                None => assert!(!pkg.c_check.is_empty() && !pkg.extensions.is_empty(), "{}: no check of its extension", pkg.name),
            }
            // A full-only row runs its whole suite whatever the scope.
            if pkg.full_only {
                assert_eq!(pkg.fast, pkg.suite, "{}", pkg.name);
            }
        }
    }

    /// The rows every `cargo xtask test` (CI's) builds and runs: the 20-package table's rows
    /// must not add to them.
    #[test]
    fn the_default_run_builds_the_core_packages() {
        let core: Vec<&str> = PACKAGES.iter().filter(|p| !p.full_only).map(|p| p.name).collect();
        assert_eq!(core, ["markupsafe", "regex", "pyyaml", "zstandard", "multidict", "propcache", "frozenlist", "yarl", "ujson", "numpy"]);
    }
}
