//! Running external programs (zig, pip, configure, make, a build backend) so that a failure
//! is one line: what failed, the line of output that says why, and where the whole log is.

use crate::error::{Error, IoContext, Result};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn program_name(cmd: &Command) -> String {
    Path::new(cmd.get_program()).file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The line of a failed program's output most likely to say why: the last line that looks
/// like an error, else the last non-empty line.
pub fn reason_line(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let looks_like_error = |l: &&&str| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("error") || lower.contains("error:") || lower.contains("exception:") || lower.starts_with("fatal")
    };
    // A compiler's diagnostic (`file:line:col: error: ...`) says more than the build tool's
    // "command failed" line after it: the first one is the cause.
    let diagnostic = |l: &&&str| l.contains(": error: ") && !l.starts_with("error: ");
    let line = lines.iter().find(diagnostic).or_else(|| lines.iter().rev().find(looks_like_error)).or(lines.last())?;
    // Keep the line a line: a compiler command can be kilobytes long.
    let mut line = line.to_string();
    if line.len() > 400 {
        let mut cut = 400;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(" ...");
    }
    Some(line)
}

fn spawn(cmd: &mut Command, what: &str) -> Result<Output> {
    cmd.output().map_err(|source| Error::Spawn { what: what.to_owned(), program: program_name(cmd), source })
}

/// Runs `cmd` and returns its stdout; on failure the error names `what` and the line of
/// stderr (or stdout) that says why.
pub fn capture(cmd: &mut Command, what: &str) -> Result<String> {
    let out = spawn(cmd, what)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = reason_line(&stderr).or_else(|| reason_line(&stdout));
        return Err(Error::Command { what: what.to_owned(), status: out.status.to_string(), reason, log: None });
    }
    Ok(stdout)
}

/// Runs `cmd` with its stdout and stderr in `log`; on failure the error names `what`, the line
/// of the log that says why, and the log.
pub fn logged(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).at("create directory", dir)?;
    }
    let file = fs::File::create(log).at("create", log)?;
    let err_file = file.try_clone().at("open", log)?;
    let status = cmd.stdout(file).stderr(err_file).status().map_err(|source| Error::Spawn {
        what: what.to_owned(),
        program: program_name(cmd),
        source,
    })?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        return Err(Error::Command {
            what: what.to_owned(),
            status: status.to_string(),
            reason: reason_line(&text),
            log: Some(log.to_path_buf()),
        });
    }
    Ok(())
}

/// `chmod +x` without a subprocess.
pub fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = fs::metadata(path).at("stat", path)?.permissions();
    perms.set_mode(perms.mode() | 0o755);
    fs::set_permissions(path, perms).at("chmod", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_error_line() {
        let out = "Collecting x\n  ERROR: No matching distribution found for x\n\nnotice: upgrade pip\n";
        assert_eq!(reason_line(out).as_deref(), Some("ERROR: No matching distribution found for x"));
        assert_eq!(reason_line("a\nb\n").as_deref(), Some("b"));
        let compile = "x.c:1:2: error: no type named 'mutex'\ny.c:3:4: error: other\nerror: command 'cc' failed with exit code 1\n";
        assert_eq!(reason_line(compile).as_deref(), Some("x.c:1:2: error: no type named 'mutex'"));
        assert_eq!(reason_line(""), None);
    }
}
