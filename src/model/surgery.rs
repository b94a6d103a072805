//! Test-time surgery for the analyses of `crate::analysis`: removing blocks
//! (Veit et al.'s lesion study) and choosing which residual branches pass
//! gradient (their gradient-by-path-length measurement). Training never sets
//! any of it: an empty [`Surgery`] leaves every block as built.

use std::collections::HashMap;

/// Which way a residual block passes the gradient on the backward pass. The
/// forward value is always the block's own: only `detach()` is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientRoute {
    /// Through the residual branch `F` only (the shortcut's output is
    /// detached): the block counts in the path's length.
    Branch,
    /// Through the shortcut only (the branch's output is detached): the
    /// path skips the block.
    Shortcut,
}

/// Per-block changes of one forward pass, keyed by block instance index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Surgery {
    /// Blocks removed at test time: a residual block keeps only its shortcut
    /// (with the activation the block applies after the addition), any other
    /// block becomes the identity (only valid when its input and output
    /// shapes match; `crate::analysis::lesion` checks).
    pub removed: Vec<usize>,
    /// Gradient routes of residual blocks; blocks not listed pass gradient
    /// both ways, as usual.
    pub routes: HashMap<usize, GradientRoute>,
}

impl Surgery {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.routes.is_empty()
    }

    pub fn removes(&self, instance: usize) -> bool {
        self.removed.contains(&instance)
    }

    pub fn route(&self, instance: usize) -> Option<GradientRoute> {
        self.routes.get(&instance).copied()
    }
}
