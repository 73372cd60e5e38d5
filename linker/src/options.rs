//! Command-line options, spelled as wasm-ld spells them.
//!
//! Hand-rolled rather than clap: lld accepts `-shared` and `--shared` alike, glued and
//! separate values (`-lz`, `-l z`, `--export=f`, `--export f`), and `@responsefile`, which
//! clap does not model.

use crate::error::{LinkError, Result};
use std::path::PathBuf;

/// How the module's own default-visibility symbols bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Binding {
    /// Our default (`-Bsymbolic`): references to the module's own definitions resolve inside
    /// the module, through internal GOT globals. An extension never calls a same-named symbol
    /// of the main module by mistake.
    #[default]
    Local,
    /// wasm-ld's default (`--no-bsymbolic`): own default-visibility symbols are reached through
    /// `GOT.mem`/`GOT.func` imports, so an earlier module can interpose them.
    Interposable,
}

/// What to do with a non-PIC object's code (`--pic-rewrite=on|off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PicRewrite {
    /// Rewrite function bodies that use absolute addresses into position-independent form
    /// (see [`crate::rewrite`]): third-party static libraries often come without `-fPIC`.
    #[default]
    On,
    /// Refuse absolute-address relocations with wasm-ld's "recompile with -fPIC" error.
    Off,
}

/// Whether the objects' `target_features` must agree (`--check-features`, the default, or
/// `--no-check-features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureCheck {
    /// Refuse a feature one object disallows and another uses, as wasm-ld does.
    #[default]
    On,
    /// Link anyway; the output still lists and is validated against the used features.
    Off,
}

/// What to link and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Inputs in command-line order: files, and `-l` names.
    pub inputs: Vec<InputSpec>,
    /// `-L` directories, in order.
    pub search_paths: Vec<PathBuf>,
    /// `-o`.
    pub output: Option<PathBuf>,
    /// `--export=NAME`: exported even if hidden; an error if undefined.
    pub exports: Vec<String>,
    /// `--export-if-defined=NAME`: exported even if hidden, when defined.
    pub exports_if_defined: Vec<String>,
    /// `-rpath` entries for dylink.0 RUNTIME_PATH.
    pub rpath: Vec<String>,
    /// `-soname` (accepted; dylink.0 has no field for it).
    pub soname: Option<String>,
    /// `--strip-all`: no `name` section.
    pub strip_all: bool,
    /// Symbol binding.
    pub binding: Binding,
    /// `--pic-rewrite=on|off`: rewrite non-PIC code, or refuse it as wasm-ld does.
    pub pic_rewrite: PicRewrite,
    /// `--check-features` / `--no-check-features`.
    pub check_features: FeatureCheck,
    /// `--features=A,B`: the output's features instead of those the objects use.
    pub features: Option<Vec<String>>,
    /// `--no-entry` (the default for side modules; accepted for wasm-ld compatibility).
    pub no_entry: bool,
    /// `--version`: print the version and stop.
    pub version: bool,
    /// `--help`.
    pub help: bool,
}

/// One input as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// A path: `.o`, `.a` or `.so`.
    File(PathBuf),
    /// `-lNAME`: `libNAME.a` or `libNAME.so` in the `-L` directories.
    Library(String),
}

/// The version line `--version` prints.
pub const VERSION: &str = concat!("pymode-ld ", env!("CARGO_PKG_VERSION"), " (compatible with wasm-ld --shared --experimental-pic)");

/// The usage text `--help` prints.
pub const USAGE: &str = "\
usage: pymode-ld -shared [options] FILE... -o OUTPUT

Links wasm32 relocatable objects (zig cc -fPIC -c), archives and side modules into a
dylink.0 side module.

  -shared, --shared         build a side module (the only mode; may be omitted)
  -o FILE                   output file
  -L DIR, -lNAME            library search path and library (libNAME.a, libNAME.so)
  --export=NAME             export NAME even if hidden
  --export-if-defined=NAME  the same, if NAME is defined
  -rpath DIR                add DIR to dylink.0 RUNTIME_PATH ($ORIGIN allowed)
  -soname NAME              accepted (dylink.0 has no soname)
  --strip-all               no name section
  --strip-debug             drop debug sections (always done)
  -Bsymbolic                bind own symbols locally (default)
  --no-bsymbolic            keep wasm-ld's interposable GOT imports for own symbols
  --pic-rewrite=on|off      rewrite non-PIC objects' code to position-independent form
                            (default on; off refuses them as wasm-ld does)
  --features=A,B            the wasm features the output uses, instead of those the
                            objects' target_features sections mark used
  --no-check-features       link objects whose target_features disagree
  --no-entry                accepted (side modules have no entry)
  --version, --help
  @FILE                     read more arguments from FILE
";

/// Flags wasm-ld users pass that change nothing for us. With a value when the second field
/// says so (`-O2` carries it glued).
const IGNORED_FLAGS: &[&str] = &[
    "--experimental-pic",
    "--allow-undefined",
    "--import-undefined",
    "--gc-sections",
    "--no-gc-sections",
    "--no-merge-data-segments",
    "--merge-data-segments",
    "--export-dynamic",
    "--no-export-dynamic",
    "--import-memory",
    "--import-table",
    "--fatal-warnings",
    "--color-diagnostics",
    "--no-color-diagnostics",
    "--demangle",
    "--no-demangle",
    "--stack-first",
    "--growable-table",
];

/// Ignored flags whose value we check: `--unresolved-symbols=import-dynamic` is what we do.
const IGNORED_PREFIXES: &[&str] = &["--unresolved-symbols=", "-O", "--lto-O", "--threads="];

impl Options {
    /// Parses arguments (without the program name). Returns the options and the warnings to
    /// print (for flags accepted but ignored).
    ///
    /// # Errors
    /// An unknown flag, a flag missing its value, or an unreadable `@responsefile`.
    pub fn parse<I, S>(args: I) -> Result<(Options, Vec<String>)>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args = expand_response_files(args.into_iter().map(Into::into).collect(), 0)?;
        let mut opts = Options::default();
        let mut warnings = Vec::new();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            // lld accepts long options with one dash or two.
            let flag = if arg.starts_with("--") { arg[1..].to_owned() } else { arg.clone() };
            let mut value =
                |name: &str| -> Result<String> { it.next().ok_or_else(|| LinkError::Usage(format!("{name}: missing argument"))) };
            match flag.as_str() {
                "-shared" => {}
                "-o" => opts.output = Some(PathBuf::from(value("-o")?)),
                "-L" => opts.search_paths.push(PathBuf::from(value("-L")?)),
                "-l" => opts.inputs.push(InputSpec::Library(value("-l")?)),
                "-export" => opts.exports.push(value("--export")?),
                "-export-if-defined" => opts.exports_if_defined.push(value("--export-if-defined")?),
                "-rpath" => opts.rpath.push(value("-rpath")?),
                "-soname" => opts.soname = Some(value("-soname")?),
                "-strip-all" | "-s" => opts.strip_all = true,
                "-strip-debug" | "-S" => {}
                "-Bsymbolic" => opts.binding = Binding::Local,
                "-no-bsymbolic" => opts.binding = Binding::Interposable,
                "-no-entry" => opts.no_entry = true,
                "-check-features" => opts.check_features = FeatureCheck::On,
                "-no-check-features" => opts.check_features = FeatureCheck::Off,
                "-features" => opts.features = Some(feature_list(&value("--features")?)),
                "-version" | "-v" => opts.version = true,
                "-help" | "-h" => opts.help = true,
                "-" => return Err(LinkError::Usage("reading input from stdin is not supported".into())),
                _ if IGNORED_FLAGS.contains(&arg.as_str()) || IGNORED_FLAGS.contains(&format!("-{flag}").as_str()) => {
                    warnings.push(format!("ignoring {arg}: no effect for pymode-ld"));
                }
                _ if flag.starts_with("-unresolved-symbols=") => {
                    let mode = &flag["-unresolved-symbols=".len()..];
                    if mode != "import-dynamic" && mode != "ignore-all" {
                        return Err(LinkError::Usage(format!(
                            "--unresolved-symbols={mode}: only import-dynamic is supported (undefined symbols become imports)"
                        )));
                    }
                    warnings.push(format!("ignoring {arg}: undefined symbols always become imports"));
                }
                _ if IGNORED_PREFIXES.iter().any(|p| arg.starts_with(p) || format!("-{flag}").starts_with(p)) => {
                    warnings.push(format!("ignoring {arg}: no effect for pymode-ld"));
                }
                _ if flag.starts_with("-o") && !arg.starts_with("--") => opts.output = Some(PathBuf::from(&arg[2..])),
                _ if arg.starts_with("-L") => opts.search_paths.push(PathBuf::from(&arg[2..])),
                _ if arg.starts_with("-l") => opts.inputs.push(InputSpec::Library(arg[2..].to_owned())),
                "-pic-rewrite" => opts.pic_rewrite = pic_rewrite(&value("--pic-rewrite")?)?,
                _ if flag.starts_with("-pic-rewrite=") => opts.pic_rewrite = pic_rewrite(&flag["-pic-rewrite=".len()..])?,
                _ if flag.starts_with("-export=") => {
                    let v = &flag["-export=".len()..];
                    opts.exports.push(v.to_owned());
                }
                _ if flag.starts_with("-export-if-defined=") => {
                    let v = &flag["-export-if-defined=".len()..];
                    opts.exports_if_defined.push(v.to_owned());
                }
                _ if flag.starts_with("-rpath=") => {
                    let v = &flag["-rpath=".len()..];
                    opts.rpath.push(v.to_owned());
                }
                _ if flag.starts_with("-features=") => opts.features = Some(feature_list(&flag["-features=".len()..])),
                _ if flag.starts_with("-soname=") => {
                    let v = &flag["-soname=".len()..];
                    opts.soname = Some(v.to_owned());
                }
                _ if arg.starts_with('-') => return Err(LinkError::Usage(format!("unknown argument: {arg}"))),
                _ => opts.inputs.push(InputSpec::File(PathBuf::from(arg))),
            }
        }
        Ok((opts, warnings))
    }
}

fn pic_rewrite(value: &str) -> Result<PicRewrite> {
    match value {
        "on" => Ok(PicRewrite::On),
        "off" => Ok(PicRewrite::Off),
        other => Err(LinkError::Usage(format!("--pic-rewrite={other}: expected on or off"))),
    }
}

/// `--features=a,b,c`: wasm-ld's comma-separated list (empty entries dropped).
fn feature_list(value: &str) -> Vec<String> {
    value.split(',').filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

/// Replaces each `@FILE` with the whitespace-separated words of FILE (double quotes group),
/// recursively, as lld does.
fn expand_response_files(args: Vec<String>, depth: usize) -> Result<Vec<String>> {
    // A file that includes itself would recurse forever.
    if depth > 16 {
        return Err(LinkError::Usage("response files nested too deeply".into()));
    }
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        match arg.strip_prefix('@') {
            Some(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(path).map_err(|source| LinkError::Io { path: PathBuf::from(path), source })?;
                out.extend(expand_response_files(split_words(&text), depth + 1)?);
            }
            _ => out.push(arg),
        }
    }
    Ok(out)
}

fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_ld_spellings() {
        let (o, w) = Options::parse([
            "--shared",
            "-o",
            "x.so",
            "-Lfoo",
            "-L",
            "bar",
            "-lz",
            "a.o",
            "--export=f",
            "-rpath",
            "$ORIGIN",
            "--experimental-pic",
            "--unresolved-symbols=import-dynamic",
            "-O2",
            "--no-bsymbolic",
            "--export-if-defined=__wasm_call_ctors",
        ])
        .unwrap();
        assert_eq!(o.output, Some(PathBuf::from("x.so")));
        assert_eq!(o.search_paths, vec![PathBuf::from("foo"), PathBuf::from("bar")]);
        assert_eq!(o.inputs, vec![InputSpec::Library("z".into()), InputSpec::File("a.o".into())]);
        assert_eq!(o.exports, vec!["f".to_owned()]);
        assert_eq!(o.exports_if_defined, vec!["__wasm_call_ctors".to_owned()]);
        assert_eq!(o.rpath, vec!["$ORIGIN".to_owned()]);
        assert_eq!(o.binding, Binding::Interposable);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn pic_rewrite_flag() {
        assert_eq!(Options::parse(["a.o"]).unwrap().0.pic_rewrite, PicRewrite::On);
        assert_eq!(Options::parse(["--pic-rewrite=off"]).unwrap().0.pic_rewrite, PicRewrite::Off);
        assert_eq!(Options::parse(["-pic-rewrite", "off", "--pic-rewrite=on"]).unwrap().0.pic_rewrite, PicRewrite::On);
        let err = Options::parse(["--pic-rewrite=maybe"]).unwrap_err();
        assert_eq!(err.to_string(), "--pic-rewrite=maybe: expected on or off");
    }

    #[test]
    fn unknown_flag_is_an_error() {
        let err = Options::parse(["--frobnicate"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown argument: --frobnicate");
    }

    #[test]
    fn response_file_words() {
        assert_eq!(split_words("a \"b c\"\n d\\ e"), vec!["a", "b c", "d e"]);
    }
}
