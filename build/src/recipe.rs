//! Recipes: what a package's build cannot find out by itself, and nothing else. A recipe is
//! optional; `pymode wheel` finds one by package name among those compiled into the tool
//! (`build/recipes/NAME.toml`) or takes one with `--recipe FILE`. Each must say `why` it
//! exists.
//!
//! ```toml
//! why = "..."                     # required
//! static-libs = ["libyaml"]       # static libraries built for wasm32-wasi, passed as -I/-L
//! build-requires = ["Cython"]     # added to the sdist's own [build-system] requires
//! cflags = ["-DX"]                # extra compile flags
//! [env]                           # environment variables for the build
//! [config-settings]               # PEP 517 config settings
//! ```

use crate::error::{Error, IoContext, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The recipes compiled into the tool, as (package name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("httptools", include_str!("../recipes/httptools.toml")),
    ("numpy", include_str!("../recipes/numpy.toml")),
    ("pyyaml", include_str!("../recipes/pyyaml.toml")),
    ("zstandard", include_str!("../recipes/zstandard.toml")),
];

/// A parsed recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Why the recipe exists.
    pub why: String,
    /// Static libraries to build and pass to the compile and link (see [`crate::staticlib`]).
    #[serde(default, rename = "static-libs")]
    pub static_libs: Vec<String>,
    /// Build requirements added to the sdist's own.
    #[serde(default, rename = "build-requires")]
    pub build_requires: Vec<String>,
    /// Extra compile flags.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Environment variables for the build.
    #[serde(default)]
    pub env: BTreeMap<String, toml::Value>,
    /// PEP 517 config settings.
    #[serde(default, rename = "config-settings")]
    pub config_settings: BTreeMap<String, toml::Value>,
    /// The TOML text (the build driver reads it too).
    #[serde(skip)]
    pub text: String,
}

impl Recipe {
    /// Parses a recipe; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Recipe> {
        let mut recipe: Recipe = toml::from_str(text).map_err(|e| Error::input(origin, format!("not a valid recipe: {}", e.message())))?;
        if recipe.why.trim().is_empty() {
            return Err(Error::input(origin, "a recipe must say `why` it exists"));
        }
        recipe.text = text.to_owned();
        Ok(recipe)
    }

    /// Reads and parses a recipe file.
    pub fn from_file(path: &Path) -> Result<Recipe> {
        let text = fs::read_to_string(path).at("read recipe", path)?;
        Recipe::parse(&path.display().to_string(), &text)
    }

    /// The built-in recipe for a package, if there is one (names compared as PEP 503 does).
    pub fn builtin(package: &str) -> Result<Option<Recipe>> {
        let wanted = normalize_name(package);
        BUILTIN
            .iter()
            .find(|(name, _)| normalize_name(name) == wanted)
            .map(|(name, text)| Recipe::parse(&format!("built-in recipe {name}"), text))
            .transpose()
    }
}

/// A distribution name normalized as PEP 503 does: lowercase, runs of `-_.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_recipes_parse_and_say_why() {
        for (name, _) in BUILTIN {
            let recipe = Recipe::builtin(name).unwrap().unwrap();
            assert!(!recipe.why.trim().is_empty());
        }
        assert_eq!(Recipe::builtin("PyYAML").unwrap().unwrap().static_libs, ["libyaml"]);
        assert!(Recipe::builtin("no-such").unwrap().is_none());
    }

    #[test]
    fn a_recipe_without_why_or_with_unknown_keys_is_refused() {
        assert!(Recipe::parse("r", "env = {}").is_err());
        assert!(Recipe::parse("r", "why = 'x'\nstatic = []").is_err());
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize_name("Ruamel.Yaml__clib"), "ruamel-yaml-clib");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }
}
