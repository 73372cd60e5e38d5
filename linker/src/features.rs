//! Phase 1b: which wasm features the output uses, from the objects' `target_features`
//! sections, and whether the objects agree (wasm-ld's `--check-features`).
//!
//! As in wasm-ld, the output uses every feature an object marks used (`+`), unless
//! `--features=` names the set; an object without the section is assumed compatible with
//! everything. With checking on (the default), a feature one object disallows (`-`) must not
//! be used by the output, a feature one object requires (`=`) must be used or required by
//! every object that has the section, and with `--features=` every used feature must be in
//! the list. The output carries its own `target_features` section listing its features, and
//! is validated against zig's default set plus those ([`crate::emit::declared_features`]).

use crate::error::{LinkError, Result};
use crate::input::Inputs;
use crate::options::{FeatureCheck, Options};
use pymode_abi::object::FeaturePolicy;
use std::collections::{BTreeMap, BTreeSet};

/// Computes the output's features (LLVM names, sorted) and checks that the objects agree.
///
/// # Errors
/// [`LinkError::FeatureConflict`] when checking is on and two objects (or an object and
/// `--features=`) disagree; [`LinkError::Unsupported`] for `memory64`.
pub fn compute(inputs: &Inputs<'_>, opts: &Options) -> Result<Vec<String>> {
    // For each feature: the first object that uses, disallows or requires it.
    let mut used: BTreeMap<&str, &str> = BTreeMap::new();
    let mut disallowed: BTreeMap<&str, &str> = BTreeMap::new();
    let mut required: BTreeMap<&str, &str> = BTreeMap::new();
    for obj in &inputs.objects {
        for feature in obj.target_features.iter().flatten() {
            let by_policy = match feature.policy {
                FeaturePolicy::Used => &mut used,
                FeaturePolicy::Disallowed => &mut disallowed,
                FeaturePolicy::Required => &mut required,
            };
            by_policy.entry(feature.name).or_insert(&obj.name);
        }
    }
    let output: Vec<String> = match &opts.features {
        Some(explicit) => {
            if opts.check_features == FeatureCheck::On
                && let Some((name, file)) = used.iter().find(|(name, _)| !explicit.iter().any(|e| e == *name))
            {
                return Err(LinkError::FeatureConflict(format!("target feature '{name}' used by {file} is not in --features")));
            }
            let mut list = explicit.clone();
            list.sort();
            list.dedup();
            list
        }
        None => {
            let inferred: BTreeSet<&str> = used.keys().chain(required.keys()).copied().collect();
            inferred.into_iter().map(str::to_owned).collect()
        }
    };
    if opts.check_features == FeatureCheck::On {
        for (name, by) in &disallowed {
            if output.iter().any(|o| o == name) {
                let user = used.get(name).or(required.get(name)).map_or("--features", |file| file);
                return Err(LinkError::FeatureConflict(format!(
                    "target feature '{name}' used by {user} is disallowed by {by}; use --no-check-features to link anyway"
                )));
            }
        }
        for (name, by) in &required {
            let lacking = inputs.objects.iter().find(|obj| {
                obj.target_features
                    .as_ref()
                    .is_some_and(|features| !features.iter().any(|f| f.name == *name && f.policy != FeaturePolicy::Disallowed))
            });
            if let Some(obj) = lacking {
                return Err(LinkError::FeatureConflict(format!("missing target feature '{name}' in {}, required by {by}", obj.name)));
            }
        }
    }
    if output.iter().any(|name| name == "memory64") {
        let file = used.get("memory64").or(required.get("memory64")).map_or("--features", |file| file);
        return Err(LinkError::Unsupported { file: file.to_owned(), what: "memory64 (side modules share a 32-bit memory)".into() });
    }
    Ok(output)
}
