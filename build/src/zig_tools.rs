//! The one generator of the zig tool wrappers: `zcc`, `zcxx`, `zar`, `zranlib`, one-word
//! shell scripts for build systems that take each tool as one word (configure, make,
//! distutils).
//!
//! The texts are part of the cache keys of what they build (the CPython main module, zlib),
//! so they are generated from a few options rather than written out per build, and a test
//! pins them byte for byte: changing one rebuilds CPython (about 20 minutes).

use crate::error::{IoContext, Result};
use crate::pins::WASI_TARGET;
use crate::process::make_executable;
use std::fs;
use std::path::Path;

/// What a build needs from `zcc` beyond `zig cc -target wasm32-wasi`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CcOptions {
    /// Arguments dropped from every command line.
    pub drop: &'static [&'static str],
    /// Flags put before the caller's.
    pub flags: &'static [&'static str],
}

/// For CPython's configure and make: zig refuses `-Wl,--stack-first` (it passes
/// `--stack-first` itself), and adds `-Werror=date-time` in optimised builds, which
/// `Modules/getbuildinfo.c` trips over.
pub const CPYTHON_CC: CcOptions = CcOptions { drop: &["-Wl,--stack-first"], flags: &["-Wno-error=date-time"] };

/// For everything else: `zig cc -target wasm32-wasi` as it is.
pub const PLAIN_CC: CcOptions = CcOptions { drop: &[], flags: &[] };

/// `zcc`, `zar`, `zranlib`, as (name, script), for the zig at `zig`.
pub fn scripts(zig: &Path, cc: CcOptions) -> [(&'static str, String); 3] {
    let zig = zig.display();
    let mut zcc = String::from("#!/bin/sh\n");
    if !cc.drop.is_empty() {
        zcc.push_str("for a in \"$@\"; do\n  shift\n");
        for arg in cc.drop {
            zcc.push_str(&format!("  [ \"$a\" = {arg} ] && continue\n"));
        }
        zcc.push_str("  set -- \"$@\" \"$a\"\ndone\n");
    }
    let flags: String = cc.flags.iter().map(|f| format!(" {f}")).collect();
    zcc.push_str(&format!("exec \"{zig}\" cc -target {WASI_TARGET}{flags} \"$@\"\n"));
    [
        ("zcc", zcc),
        ("zar", format!("#!/bin/sh\nexec \"{zig}\" ar \"$@\"\n")),
        ("zranlib", format!("#!/bin/sh\nexec \"{zig}\" ranlib \"$@\"\n")),
    ]
}

/// `zcxx`: `zig c++ -target wasm32-wasi`.
pub fn cxx_script(zig: &Path) -> (&'static str, String) {
    ("zcxx", format!("#!/bin/sh\nexec \"{}\" c++ -target {WASI_TARGET} \"$@\"\n", zig.display()))
}

/// Writes [`scripts`] and [`cxx_script`] into `dir` (leaving files that are already right
/// alone, so their timestamps do not trigger rebuilds).
pub fn write(dir: &Path, zig: &Path, cc: CcOptions) -> Result<()> {
    fs::create_dir_all(dir).at("create directory", dir)?;
    for (name, text) in scripts(zig, cc).into_iter().chain(std::iter::once(cxx_script(zig))) {
        let path = dir.join(name);
        if fs::read_to_string(&path).is_ok_and(|t| t == text) {
            continue;
        }
        fs::write(&path, &text).at("write", &path)?;
        make_executable(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact texts the CPython and zlib cache keys were computed with.
    #[test]
    fn scripts_are_pinned() {
        let zig = Path::new("/z/zig");
        let [(_, zcc), (_, zar), (_, zranlib)] = scripts(zig, CPYTHON_CC);
        assert_eq!(
            zcc,
            "#!/bin/sh\nfor a in \"$@\"; do\n  shift\n  [ \"$a\" = -Wl,--stack-first ] && continue\n  set -- \"$@\" \"$a\"\ndone\nexec \"/z/zig\" cc -target wasm32-wasi -Wno-error=date-time \"$@\"\n"
        );
        assert_eq!(zar, "#!/bin/sh\nexec \"/z/zig\" ar \"$@\"\n");
        assert_eq!(zranlib, "#!/bin/sh\nexec \"/z/zig\" ranlib \"$@\"\n");
        let [(_, plain), _, _] = scripts(zig, PLAIN_CC);
        assert_eq!(plain, "#!/bin/sh\nexec \"/z/zig\" cc -target wasm32-wasi \"$@\"\n");
        assert_eq!(cxx_script(zig).1, "#!/bin/sh\nexec \"/z/zig\" c++ -target wasm32-wasi \"$@\"\n");
    }
}
