//! Validation, shape inference, parameter counts and depth, on the pure
//! description. Every problem becomes a [`BlockError`] in words; nothing here
//! panics on a bad architecture. Each kind of block's own shape, parameters
//! and depth are worked out in `shapes`.

use serde::Serialize;

use super::spec::{Architecture, BRANCH_LAYERS, BlockKind, BlockSpec, LayerOptions, Norm, ResidualInit, Shape, Shortcut};

mod shapes;

pub use shapes::{conv_params, infer_block};

// Sizes refused before anything is built, so that a typo (a kernel of
// 4611686018427387905, a million filters) gives an error naming the block
// instead of an arithmetic overflow or an allocation abort.

/// Most filters, units or growth of one layer.
pub const MAX_WIDTH: usize = 65_536;
/// Largest kernel side.
pub const MAX_KERNEL: usize = 255;
/// Most copies of one entry.
pub const MAX_REPEAT: usize = 10_000;
/// Most layers of one dense block.
pub const MAX_DENSE_LAYERS: usize = 1_000;
/// Most parameters of a whole network (2 GB of f32 weights, before their
/// gradients and the optimiser's state).
pub const MAX_PARAMS: usize = 500_000_000;
/// Most values in the input or in any block's output, per example (256 MB
/// of f32 per example).
pub const MAX_VALUES_PER_EXAMPLE: usize = 1 << 26;

/// A problem with one block (or with the network as a whole when `block` is
/// `None`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockError {
    /// 1-based index of the block entry.
    pub block: Option<usize>,
    #[serde(skip)]
    pub kind: String,
    pub message: String,
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.block {
            Some(index) => write!(f, "block {index} ({}): {}", self.kind, self.message),
            None => write!(f, "network: {}", self.message),
        }
    }
}

/// One block instance after `repeat` is expanded: what the model builder and
/// the probes work from.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// 0-based index of the entry this instance comes from.
    pub entry: usize,
    /// Which copy of the entry (0 for the first).
    pub copy: usize,
    /// The kind with the options of this copy (stride 1 after the first copy).
    pub kind: BlockKind,
    pub layer: LayerOptions,
    pub input: Shape,
    pub output: Shape,
    pub params: usize,
    /// Weight layers on this instance's longest path.
    pub depth: usize,
    /// Stochastic-depth survival probability (residual blocks only).
    pub survival: Option<f32>,
}

impl Instance {
    /// Whether the instance has weight layers (and so appears in gradient probes).
    pub fn has_weights(&self) -> bool {
        self.depth > 0
    }

    /// A short name used in probe tables: `"7 residual (2/3)"`.
    /// A plain net's pairs are named `plain_pair` (`plain_dense` in an
    /// MLP), not after the residual block they are built as without a
    /// shortcut, so that a plot or a lesion table of plain-20 never reads
    /// "residual".
    pub fn name(&self, repeat: usize) -> String {
        let tag = match self.kind {
            BlockKind::Residual { shortcut: Shortcut::None, .. } => "plain_pair",
            BlockKind::ResidualDense { shortcut: Shortcut::None, .. } => "plain_dense",
            _ => self.kind.tag(),
        };
        if repeat > 1 { format!("{} {tag} ({}/{})", self.entry + 1, self.copy + 1, repeat) } else { format!("{} {tag}", self.entry + 1) }
    }
}

/// Per-entry summary for tables and the builder.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryInfo {
    pub input: Option<Shape>,
    pub output: Option<Shape>,
    pub params: usize,
    pub depth: usize,
}

/// Everything known about an architecture for one input shape and class count.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub input: Shape,
    pub classes: usize,
    pub entries: Vec<EntryInfo>,
    pub instances: Vec<Instance>,
    pub output: Option<Shape>,
    pub params: usize,
    pub depth: usize,
    pub errors: Vec<BlockError>,
}

impl Analysis {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The first error of an entry, if any (for inline display).
    pub fn error_for(&self, entry: usize) -> Option<&BlockError> {
        self.errors.iter().find(|e| e.block == Some(entry + 1))
    }
}

/// Analyses `arch` for examples of shape `input` and `classes` classes.
pub fn analyse(arch: &Architecture, input: Shape, classes: usize) -> Analysis {
    let mut errors = Vec::new();
    let mut entries = Vec::new();
    let mut instances = Vec::new();
    if classes < 2 {
        errors.push(BlockError { block: None, kind: String::new(), message: format!("{classes} classes: a classifier needs at least 2") });
    }
    if arch.blocks.is_empty() {
        errors.push(BlockError { block: None, kind: String::new(), message: "the network has no blocks".into() });
    }
    let network_error = |message: String| BlockError { block: None, kind: String::new(), message };
    if input.dims().contains(&0) || input.numel() > MAX_VALUES_PER_EXAMPLE {
        errors.push(network_error(format!(
            "input {input}: every dimension must be at least 1 and an example at most {MAX_VALUES_PER_EXAMPLE} values"
        )));
    }
    if let Some(sd) = arch.stochastic_depth
        && !(sd.final_survival > 0.0 && sd.final_survival <= 1.0)
    {
        errors
            .push(network_error(format!("stochastic depth: the final survival probability must be in (0, 1], not {}", sd.final_survival)));
    }
    let classifier_positions: Vec<usize> =
        arch.blocks.iter().enumerate().filter(|(_, b)| b.kind == BlockKind::Classifier).map(|(i, _)| i).collect();
    match classifier_positions.as_slice() {
        [] if !arch.blocks.is_empty() => errors.push(BlockError {
            block: None,
            kind: String::new(),
            message: "the network has no classifier: add one as the last block".into(),
        }),
        positions => {
            for &i in positions {
                if i + 1 != arch.blocks.len() {
                    errors.push(block_error(i, &arch.blocks[i].kind, "the classifier must be the last block".into()));
                } else if arch.blocks[i].repeat != 1 {
                    errors.push(block_error(i, &arch.blocks[i].kind, "the classifier cannot repeat".into()));
                }
            }
        }
    }

    let mut shape = (errors.is_empty() || input.numel() <= MAX_VALUES_PER_EXAMPLE).then_some(input);
    for (i, block) in arch.blocks.iter().enumerate() {
        let mut info = EntryInfo { input: shape, output: None, params: 0, depth: 0 };
        if let Some(message) = check_options(block) {
            errors.push(block_error(i, &block.kind, message));
            shape = None;
        }
        if let Some(mut current) = shape {
            for copy in 0..block.repeat {
                let kind = copy_kind(&block.kind, copy);
                match infer_block(&kind, &block.layer, current, classes).and_then(within_limits) {
                    Ok((output, params, depth)) => {
                        instances.push(Instance {
                            entry: i,
                            copy,
                            kind,
                            layer: block.layer,
                            input: current,
                            output,
                            params,
                            depth,
                            survival: None,
                        });
                        info.params += params;
                        info.depth += depth;
                        current = output;
                    }
                    Err(e) => {
                        let message = if block.repeat > 1 { format!("copy {} of {}: {e}", copy + 1, block.repeat) } else { e.to_string() };
                        errors.push(block_error(i, &block.kind, message));
                        shape = None;
                        break;
                    }
                }
            }
            if shape.is_some() {
                info.output = Some(current);
                shape = Some(current);
            }
        }
        entries.push(info);
    }
    assign_survival(arch, &mut instances);
    let params = instances.iter().fold(0usize, |total, b| total.saturating_add(b.params));
    let depth = instances.iter().fold(0usize, |total, b| total.saturating_add(b.depth));
    if params > MAX_PARAMS {
        errors.push(network_error(format!("{params} parameters is more than the limit of {MAX_PARAMS}")));
    }
    Analysis { input, classes, entries, instances, output: shape, params, depth, errors }
}

/// Refuses a block instance whose output or parameters pass the limits.
fn within_limits(inferred: (Shape, usize, usize)) -> Result<(Shape, usize, usize), InferError> {
    let (output, params, _) = inferred;
    if output.numel() > MAX_VALUES_PER_EXAMPLE {
        return Err(InferError::OutputTooLarge(output));
    }
    if params > MAX_PARAMS {
        return Err(InferError::TooManyParams(params));
    }
    Ok(inferred)
}

/// Why one block instance cannot take its input (the message of a
/// [`BlockError`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InferError {
    #[error("its output {0} is {values} values per example, more than the limit of {MAX_VALUES_PER_EXAMPLE}", values = .0.numel())]
    OutputTooLarge(Shape),
    #[error("{0} parameters, more than the limit of {MAX_PARAMS} for a whole network")]
    TooManyParams(usize),
    #[error("{what} needs a feature map, but its input is a flat vector of {features} features (after a dense layer or global pooling)")]
    NeedsMap { what: &'static str, features: usize },
    #[error("stride {0} on a 1x1 feature map")]
    StrideOnOne(usize),
    #[error("stride {stride} is larger than its {h}x{w} input")]
    StrideTooLarge { stride: usize, h: usize, w: usize },
    #[error("option A shortcut cannot reduce channels ({c} → {out}): zero-padding only adds channels; use option B")]
    ShortcutReduces { c: usize, out: usize },
    #[error("option A pads feature maps with zero channels; a dense block changing width ({d} → {units}) needs a projection: use B")]
    ShortcutWidens { d: usize, units: usize },
    #[error("compression {compression} of {c} channels leaves none")]
    NoChannelsLeft { compression: f32, c: usize },
    #[error("2x2 average pooling on a {h}x{w} feature map")]
    TransitionTooSmall { h: usize, w: usize },
    #[error("{size}x{size} pool on a {h}x{w} feature map")]
    PoolTooLarge { size: usize, h: usize, w: usize },
}

fn block_error(index: usize, kind: &BlockKind, message: String) -> BlockError {
    BlockError { block: Some(index + 1), kind: kind.title().to_string(), message }
}

/// The kind of copy `copy` of a repeated entry: a stride applies to the first copy only.
fn copy_kind(kind: &BlockKind, copy: usize) -> BlockKind {
    if copy == 0 {
        return kind.clone();
    }
    match kind.clone() {
        BlockKind::Conv { filters, kernel, .. } => BlockKind::Conv { filters, kernel, stride: 1 },
        BlockKind::Residual { filters, bottleneck, preactivation, shortcut, survival, branch_layers, residual_init, .. } => {
            BlockKind::Residual { filters, stride: 1, bottleneck, preactivation, shortcut, survival, branch_layers, residual_init }
        }
        other => other,
    }
}

/// Stochastic-depth survival probabilities: an explicit per-block value wins,
/// otherwise the network's linear rule over residual blocks with a shortcut.
fn assign_survival(arch: &Architecture, instances: &mut [Instance]) {
    let residual: Vec<usize> = instances
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            matches!(b.kind, BlockKind::Residual { shortcut, .. } | BlockKind::ResidualDense { shortcut, .. } if shortcut != Shortcut::None)
        })
        .map(|(i, _)| i)
        .collect();
    let total = residual.len();
    for (l, &i) in residual.iter().enumerate() {
        let explicit = match instances[i].kind {
            BlockKind::Residual { survival, .. } | BlockKind::ResidualDense { survival, .. } => survival,
            _ => None,
        };
        let rule = arch.stochastic_depth.map(|sd| linear_survival(l + 1, total, sd.final_survival));
        instances[i].survival = explicit.or(rule);
    }
}

/// Huang et al.'s linear decay rule: `p_l = 1 - (l / L)(1 - p_L)` for block
/// `l` of `L` (1-based).
pub fn linear_survival(l: usize, total: usize, final_survival: f32) -> f32 {
    if total == 0 {
        return 1.0;
    }
    1.0 - (l as f32 / total as f32) * (1.0 - final_survival)
}

/// Checks a block's own options, before any shape is known.
fn check_options(block: &BlockSpec) -> Option<String> {
    if block.repeat == 0 {
        return Some("repeat must be at least 1".into());
    }
    if block.repeat > MAX_REPEAT {
        return Some(format!("repeat {} is more than the limit of {MAX_REPEAT}", block.repeat));
    }
    let capped = |name: &str, value: usize, max: usize| match value {
        0 => Some(format!("{name} must be at least 1, not 0")),
        v if v > max => Some(format!("{name} {v} is more than the limit of {max}")),
        _ => None,
    };
    let positive = |name: &str, value: usize| capped(name, value, usize::MAX);
    let width = |name: &str, value: usize| capped(name, value, MAX_WIDTH);
    let kernel_size = |value: usize| capped("kernel", value, MAX_KERNEL);
    let unit = |name: &str, value: f32, max_inclusive: bool| {
        let ok = value >= 0.0 && if max_inclusive { value <= 1.0 } else { value < 1.0 };
        (!ok).then(|| format!("{name} must be between 0 and 1{}, not {value}", if max_inclusive { "" } else { " (exclusive)" }))
    };
    match &block.kind {
        BlockKind::Conv { filters, kernel, stride } => {
            width("filters", *filters).or_else(|| kernel_size(*kernel)).or_else(|| positive("stride", *stride)).or_else(|| {
                (kernel % 2 == 0).then(|| format!("kernel {kernel} is even: use an odd size (1, 3, 5, …) so padding keeps the map centred"))
            })
        }
        BlockKind::Dense { units } => width("units", *units),
        BlockKind::Residual { filters, stride, survival, bottleneck, branch_layers, preactivation, shortcut, residual_init } => {
            width("filters", *filters)
                .or_else(|| positive("stride", *stride))
                .or_else(|| survival_check(*survival))
                .or_else(|| branch_check(*branch_layers))
                .or_else(|| {
                    (*bottleneck && *branch_layers != 2).then(|| {
                format!(
                    "a bottleneck block always holds 3 layers (1x1, 3x3, 1x1); branch_layers {branch_layers} applies to basic blocks only"
                )
            })
                })
                .or_else(|| residual_init_check(*residual_init, *shortcut, *preactivation, block.layer.norm))
        }
        BlockKind::ResidualDense { units, branch_layers, survival, preactivation, shortcut, residual_init } => width("units", *units)
            .or_else(|| branch_check(*branch_layers))
            .or_else(|| survival_check(*survival))
            .or_else(|| residual_init_check(*residual_init, *shortcut, *preactivation, block.layer.norm)),
        BlockKind::Highway { kernel, gate_bias, .. } => kernel_size(*kernel)
            .or_else(|| {
                (kernel % 2 == 0).then(|| format!("kernel {kernel} is even: a highway layer must keep its shape, so use an odd size"))
            })
            .or_else(|| (!gate_bias.is_finite()).then(|| "gate bias must be a finite number".into())),
        BlockKind::HighwayDense { gate_bias, .. } => (!gate_bias.is_finite()).then(|| "gate bias must be a finite number".into()),
        BlockKind::Fractal { columns, filters, local_drop, global_ratio } => positive("columns", *columns)
            .or_else(|| (*columns > 6).then(|| format!("{columns} columns is more than 6 (63 conv layers per block); use 1 to 6")))
            .or_else(|| width("filters", *filters))
            .or_else(|| unit("local drop-path probability", *local_drop, false))
            .or_else(|| unit("global drop-path ratio", *global_ratio, true)),
        BlockKind::DenseBlock { layers, growth_rate, .. } => {
            capped("layers", *layers, MAX_DENSE_LAYERS).or_else(|| width("growth rate", *growth_rate))
        }
        BlockKind::Transition { compression } => {
            (!(*compression > 0.0 && *compression <= 1.0)).then(|| format!("compression must be in (0, 1], not {compression}"))
        }
        BlockKind::MaxPool { size, stride } | BlockKind::AvgPool { size, stride } => {
            capped("size", *size, MAX_KERNEL).or_else(|| positive("stride", *stride))
        }
        BlockKind::Dropout { p } => unit("dropout probability", *p, false),
        BlockKind::GlobalAvgPool | BlockKind::NormAct | BlockKind::Classifier => None,
    }
}

/// A stochastic-depth survival probability must be in (0, 1].
fn survival_check(survival: Option<f32>) -> Option<String> {
    survival.and_then(|p| (!(p > 0.0 && p <= 1.0)).then(|| format!("survival probability must be in (0, 1], not {p}")))
}

/// A residual-branch initialisation must fit the block: there must be a
/// shortcut (a plain block started at zero would cut the only path), and
/// Fixup replaces normalisation in post-activation blocks.
fn residual_init_check(init: ResidualInit, shortcut: Shortcut, preactivation: bool, norm: Norm) -> Option<String> {
    if init == ResidualInit::Default {
        return None;
    }
    if shortcut == Shortcut::None {
        return Some(format!(
            "residual_init {} needs a shortcut: this block has none (a plain block), and starting its layers at zero would cut the only path",
            init.word()
        ));
    }
    if init == ResidualInit::Fixup && norm == Norm::Batchnorm {
        return Some(
            "Fixup (Zhang et al. 2019) trains without normalisation, and batch norm would undo its scaling: use norm none (--norm none), or residual_init zero or skipinit with batch norm"
                .into(),
        );
    }
    if init == ResidualInit::Fixup && preactivation {
        return Some(
            "Fixup (Zhang et al. 2019) is defined for post-activation blocks: use residual_init skipinit or zero with pre-activation"
                .into(),
        );
    }
    None
}

/// A residual branch holds 1 to 4 weight layers.
fn branch_check(layers: usize) -> Option<String> {
    (!BRANCH_LAYERS.contains(&layers)).then(|| {
        format!(
            "branch_layers must be between {} and {} (weight layers in the residual branch), not {layers}",
            BRANCH_LAYERS.start(),
            BRANCH_LAYERS.end()
        )
    })
}

impl Architecture {
    /// Shorthand for [`analyse`].
    pub fn analyse(&self, input: Shape, classes: usize) -> Analysis {
        analyse(self, input, classes)
    }
}
