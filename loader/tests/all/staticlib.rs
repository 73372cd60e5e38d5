//! A real third-party static library built without -fPIC (issue 6): zlib 1.3.1 from Debian's
//! source package, built by its own configure/make with zig cc and archived with `zig ar`
//! (`cargo xtask staticlib zlib`), linked with `testdata/staticlib/zlib_user.c` by pymode-ld
//! (which rewrites zlib's code), loaded by a C main module (`testdata/staticlib/zlib_main.c`)
//! under pymode-run, and exercised: compress, decompress, crc32. The bytes and checksums are
//! checked here in Rust, not by the guest. Fails loudly if the library has not been built.

use pymode_testdata::trials::Trial;
use std::path::{Path, PathBuf};
use std::process::Command;

use pymode_linker::Options;
use pymode_linker::options::{InputSpec, PicRewrite};
use pymode_testdata::{COMMON_CFLAGS, c_main_module, cache_dir, run_ok, workspace_root, zig_cc};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![rewrite_is_needed_for_this_zlib, zlib_built_without_fpic_compresses_and_decompresses_in_a_side_module,]
}

const RUN: &str = env!("CARGO_BIN_EXE_pymode-run");

/// Where `cargo xtask staticlib zlib` puts libz.a, zlib.h and zconf.h (xtask/src/staticlib.rs).
fn zlib_dir() -> PathBuf {
    let dir = cache_dir().join("staticlib/zlib/out");
    for f in ["libz.a", "zlib.h", "zconf.h"] {
        assert!(dir.join(f).is_file(), "{} is missing: run `cargo xtask staticlib zlib`", dir.join(f).display());
    }
    dir
}

fn src_dir() -> PathBuf {
    workspace_root().join("testdata/staticlib")
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table-driven, independent of zlib.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *slot = c;
    }
    !data.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

/// Adler-32 (RFC 1950), the checksum a zlib stream ends with.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// The inputs, by name: (bytes, whether deflate must shrink them).
fn inputs() -> Vec<(&'static str, Vec<u8>, bool)> {
    let text = b"The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. \
The quick brown fox jumps over the lazy dog again, and the dog does not mind at all.\n"
        .repeat(3);
    // 1 MiB with a period of 251 bytes, varied every 4 KiB: repetitive enough for deflate.
    let patterned: Vec<u8> = (0..1usize << 20).map(|i| ((i % 251) ^ (i >> 12)) as u8).collect();
    // 64 KiB of xorshift noise: deflate cannot shrink it (stored blocks), but must round-trip it.
    let mut x = 0x9E37_79B9u32;
    let noise: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    vec![("empty", Vec::new(), false), ("text", text, true), ("patterned", patterned, true), ("noise", noise, false)]
}

/// `zlib_user.c` (compiled -fPIC: PIC and non-PIC objects mix) + the non-PIC libz.a.
fn link_side(tmp: &Path, zlib: &Path, out: &Path, pic_rewrite: PicRewrite) -> Result<(), String> {
    let obj = tmp.join("zlib_user.o");
    run_ok(
        zig_cc()
            .args(COMMON_CFLAGS)
            .args(["-O2", "-fPIC"])
            .arg(format!("-I{}", zlib.display()))
            .arg(src_dir().join("zlib_user.c"))
            .arg("-o")
            .arg(&obj),
    );
    let opts = Options {
        inputs: vec![InputSpec::File(obj), InputSpec::File(zlib.join("libz.a"))],
        output: Some(out.to_owned()),
        pic_rewrite,
        ..Options::default()
    };
    pymode_linker::link(&opts).map_err(|e| e.to_string())
}

fn build_main(out: &Path) {
    // What the linked zlib side module imports from the main module, besides malloc and free.
    run_ok(&mut c_main_module(&src_dir().join("zlib_main.c"), out, &["strlen"]));
}

fn rewrite_is_needed_for_this_zlib() {
    // The library really is non-PIC: with the rewrite off, pymode-ld refuses it as wasm-ld would.
    let zlib = zlib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let err = link_side(tmp.path(), &zlib, &tmp.path().join("off.so"), PicRewrite::Off).expect_err("libz.a linked with --pic-rewrite=off");
    assert!(err.contains("-fPIC"), "unexpected error: {err}");
}

fn zlib_built_without_fpic_compresses_and_decompresses_in_a_side_module() {
    let zlib = zlib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let (lib, data, out) = (tmp.path().join("lib"), tmp.path().join("data"), tmp.path().join("out"));
    for d in [&lib, &data, &out] {
        std::fs::create_dir(d).unwrap();
    }
    link_side(tmp.path(), &zlib, &lib.join("zlib_user.so"), PicRewrite::On).unwrap_or_else(|e| panic!("pymode-ld: {e}"));
    let main = tmp.path().join("main.wasm");
    build_main(&main);

    let inputs = inputs();
    for (name, bytes, _) in &inputs {
        std::fs::write(data.join(name), bytes).unwrap();
    }
    let mut cmd = Command::new(RUN);
    for (host, guest) in [(&lib, "/lib"), (&data, "/data"), (&out, "/out")] {
        cmd.arg("--dir").arg(format!("{}::{guest}", host.display()));
    }
    cmd.arg(&main).arg("--").args(inputs.iter().map(|(n, _, _)| *n));
    let res = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{cmd:?}:\n{stdout}\n{stderr}");
    // The version string comes from the rewritten zlib's data segment.
    assert!(stdout.lines().any(|l| l == "version 1.3.1"), "{stdout}");

    // The standard CRC-32 check value of "123456789", so the reference itself is right.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    for (name, bytes, compressible) in &inputs {
        let line =
            stdout.lines().find(|l| l.starts_with(&format!("file {name} "))).unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"));
        let f: Vec<&str> = line.split(' ').collect();
        let field = |key: &str| -> u64 {
            let i = f.iter().position(|w| *w == key).unwrap_or_else(|| panic!("no {key} in {line}"));
            f[i + 1].parse().unwrap_or_else(|_| panic!("{key} in {line}"))
        };
        assert_eq!(field("len"), bytes.len() as u64, "{line}");
        assert_eq!(field("crc"), u64::from(crc32(bytes)), "zlib's crc32 of {name}: {line}");

        let z = std::fs::read(out.join(format!("{name}.z"))).unwrap();
        assert_eq!(z.len() as u64, field("compressed"), "{line}");
        // A zlib stream (RFC 1950): deflate with a 32 KiB window, header check, and the
        // input's Adler-32 at the end, big-endian.
        assert!(
            z.len() >= 6 && z[0] == 0x78 && (u16::from(z[0]) << 8 | u16::from(z[1])) % 31 == 0,
            "{name}: header {:02x?}",
            &z[..2.min(z.len())]
        );
        assert_eq!(z[z.len() - 4..], adler32(bytes).to_be_bytes(), "{name}: Adler-32 trailer");
        if *compressible {
            assert!(z.len() < bytes.len() / 2, "{name}: {} bytes compressed to {}", bytes.len(), z.len());
        }
        let back = std::fs::read(out.join(format!("{name}.out"))).unwrap();
        assert!(back == *bytes, "{name}: the decompressed {} bytes differ from the {} input bytes", back.len(), bytes.len());
    }
    // The 1 MiB input repeats every 251 bytes within each 4 KiB: deflate must do far better
    // than half (about 2.3% measured), not just shave a little.
    let line = stdout.lines().find(|l| l.starts_with("file patterned ")).unwrap();
    let compressed: u64 = line.split(' ').nth(5).unwrap().parse().unwrap();
    assert!(compressed < (1 << 20) / 20, "{line}");
    assert!(stdout.trim_end().ends_with("failures 0"), "{stdout}");
}
