//! The architecture as pure data: block specs, presets, validation, shape
//! inference and parameter counts. No tensors, no windows.

mod edit;
mod infer;
mod json;
pub mod presets;
mod spec;

pub use infer::{
    Analysis, BlockError, EntryInfo, InferError, Instance, MAX_DENSE_LAYERS, MAX_KERNEL, MAX_PARAMS, MAX_REPEAT, MAX_VALUES_PER_EXAMPLE,
    MAX_WIDTH, analyse, conv_params, infer_block, linear_survival,
};
pub use json::{ArchError, BlockJsonError, known_kinds};
pub use spec::*;

/// Layer flags that override every layer of an architecture, so a preset can
/// be flipped in one word (`--activation sigmoid --init standard`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerOverrides {
    pub activation: Option<Activation>,
    pub init: Option<Init>,
    pub norm: Option<Norm>,
    /// How every residual branch (of the blocks with a shortcut) starts.
    #[serde(default)]
    pub residual_init: Option<ResidualInit>,
}

impl LayerOverrides {
    pub fn is_empty(&self) -> bool {
        self.activation.is_none() && self.init.is_none() && self.norm.is_none() && self.residual_init.is_none()
    }

    /// The overrides in words, as a net's name carries them (`sigmoid`,
    /// `standard init`, `no bn`, `zero residual init`); the residual init
    /// only for a net with residual branches.
    pub fn notes(&self, residual_branches: bool) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(a) = self.activation {
            notes.push(format!("{a:?}").to_lowercase());
        }
        if let Some(i) = self.init {
            notes.push(format!("{i:?} init").to_lowercase());
        }
        if let Some(n) = self.norm {
            notes.push(match n {
                Norm::Batchnorm => "bn".to_string(),
                Norm::None => "no bn".to_string(),
            });
        }
        if let Some(r) = self.residual_init.filter(|r| !r.is_default() && residual_branches) {
            notes.push(format!("{} residual init", r.word()));
        }
        notes
    }
}

impl Architecture {
    /// Applies layer flags to every block that has weight layers. A block
    /// laid out linear (the bare stem of a pre-activation net, whose
    /// normalisation and activation open the first block) stays without an
    /// activation and a norm; only its init follows the flags.
    pub fn apply_overrides(&mut self, overrides: &LayerOverrides) {
        for block in &mut self.blocks {
            if !block.kind.has_layers() {
                continue;
            }
            let linear = block.layer.activation == Activation::Linear;
            if let Some(activation) = overrides.activation.filter(|_| !linear) {
                block.layer.activation = activation;
            }
            if let Some(init) = overrides.init {
                block.layer.init = init;
            }
            if let Some(norm) = overrides.norm.filter(|_| !linear) {
                block.layer.norm = norm;
            }
            if let Some(init) = overrides.residual_init {
                block.kind.set_residual_init(init);
            }
        }
        let notes = overrides.notes(self.has_residual_branches());
        if !notes.is_empty() && !self.name.contains('[') {
            self.name = format!("{} [{}]", self.name, notes.join(", "));
        }
    }

    /// Whether any block is residual with a shortcut: a block whose
    /// branch a residual initialisation applies to.
    pub fn has_residual_branches(&self) -> bool {
        self.blocks.iter().any(|b| b.kind.residual_init().is_some())
    }
}

/// Resolves an `ARCH` argument: a path to an architecture JSON file, or a
/// preset name built for examples of shape `input`.
pub fn resolve(spec: &str, input: Shape) -> Result<Architecture, ArchError> {
    let path = std::path::Path::new(spec);
    if path.exists() || spec.ends_with(".json") {
        return Architecture::load(path);
    }
    Ok(presets::build(spec, input)?)
}

#[cfg(test)]
mod tests;
