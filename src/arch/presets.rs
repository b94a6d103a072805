//! The networks of the papers, each parameterised by its depth.
//!
//! A preset name is a family prefix and a number: `resnet-20`, `plain-56`,
//! `highway-mlp-50`, `fractal-3`, `densenet-40-12`. Presets adapt their pooling
//! to small inputs (an 8x8 digit still gets a valid fractal net) without
//! changing their weights.

use super::spec::{
    Activation, Architecture, BlockKind, BlockSpec, Carry, Init, LayerOptions, Norm, ResidualInit, Shape, Shortcut, StochasticDepth,
};

/// A family of presets, one per depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Plain,
    Resnet,
    PreactResnet,
    ResnetSd,
    Highway,
    PlainMlp,
    HighwayMlp,
    ResnetMlp,
    Fractal,
    Densenet,
    DensenetBc,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Plain,
        Family::Resnet,
        Family::PreactResnet,
        Family::ResnetSd,
        Family::Highway,
        Family::PlainMlp,
        Family::HighwayMlp,
        Family::ResnetMlp,
        Family::Fractal,
        Family::Densenet,
        Family::DensenetBc,
    ];

    /// Whether the family's blocks are residual with a shortcut (a
    /// residual initialisation applies to them).
    pub fn has_shortcuts(self) -> bool {
        matches!(self, Family::Resnet | Family::PreactResnet | Family::ResnetSd | Family::ResnetMlp)
    }

    /// The name prefix (`resnet`, `highway-mlp`, …).
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Plain => "plain",
            Family::Resnet => "resnet",
            Family::PreactResnet => "preact-resnet",
            Family::ResnetSd => "resnet-sd",
            Family::Highway => "highway",
            Family::PlainMlp => "plain-mlp",
            Family::HighwayMlp => "highway-mlp",
            Family::ResnetMlp => "resnet-mlp",
            Family::Fractal => "fractal",
            Family::Densenet => "densenet",
            Family::DensenetBc => "densenet-bc",
        }
    }

    /// Looks a family up by its prefix.
    pub fn from_prefix(prefix: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.prefix() == prefix)
    }

    /// What the number in the name means.
    pub fn size_meaning(self) -> &'static str {
        match self {
            Family::Plain | Family::Resnet | Family::ResnetSd | Family::Highway => "depth 6n+2",
            Family::PreactResnet => "depth 6n+2 (basic) below 164, 9n+2 (bottleneck) from 164",
            Family::PlainMlp | Family::HighwayMlp => "depth (layers)",
            Family::ResnetMlp => "depth (layers), even: 2 per residual block",
            Family::Fractal => "columns C",
            Family::Densenet => "depth 3m+4, growth rate 12",
            Family::DensenetBc => "depth 6m+4, growth rate 12",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            Family::Plain => "CIFAR ResNet with every shortcut removed: the plain twin (He et al. 2016)",
            Family::Resnet => "CIFAR ResNet, 3 stages at 16/32/64 filters, option A shortcuts (He et al. 2016)",
            Family::PreactResnet => "pre-activation ResNet: BN-ReLU-conv, nothing after the addition (He et al. 2016b)",
            Family::ResnetSd => "CIFAR ResNet with stochastic depth, linear decay to p_L = 0.5 (Huang et al. 2016)",
            Family::Highway => "convolutional highway network, transform gate bias scaled with depth (Srivastava et al. 2015)",
            Family::PlainMlp => "plain fully connected net, 71 units per layer (Srivastava et al.'s baseline)",
            Family::HighwayMlp => "highway fully connected net, 50 units per layer (Srivastava et al. 2015, fig. 1)",
            Family::ResnetMlp => {
                "pre-activation residual fully connected net, blocks of 2 layers of 71 units: plain-mlp's layout plus shortcuts, and batch norm, which plain-mlp has not (--norm none here, or batchnorm there, changes one thing only)"
            }
            Family::Fractal => "FractalNet, 5 blocks of C columns with drop-path, no residuals (Larsson et al. 2017)",
            Family::Densenet => "DenseNet, 3 dense blocks, growth rate 12 (Huang et al. 2017)",
            Family::DensenetBc => "DenseNet-BC: bottleneck layers and compression 0.5 (Huang et al. 2017)",
        }
    }

    /// The valid numbers for this family's names, up to the largest the lab offers.
    pub fn sizes(self) -> Vec<usize> {
        match self {
            Family::Plain | Family::Resnet | Family::ResnetSd | Family::Highway => (1..=200).map(|n| 6 * n + 2).collect(),
            Family::PreactResnet => {
                let mut sizes: Vec<usize> = (1..=26).map(|n| 6 * n + 2).collect();
                sizes.extend((18..=111).map(|n| 9 * n + 2));
                sizes
            }
            Family::PlainMlp | Family::HighwayMlp => (3..=200).collect(),
            Family::ResnetMlp => (4..=200).step_by(2).collect(),
            Family::Fractal => (1..=5).collect(),
            Family::Densenet => (1..=32).map(|m| 3 * m + 4).collect(),
            Family::DensenetBc => (1..=32).map(|m| 6 * m + 4).collect(),
        }
    }

    /// The numbers worth listing: the papers' depths.
    pub fn featured_sizes(self) -> &'static [usize] {
        match self {
            Family::Plain => &[8, 20, 32, 56, 110],
            Family::Resnet => &[8, 14, 20, 32, 44, 56, 110, 1202],
            Family::PreactResnet => &[110, 164, 1001],
            Family::ResnetSd => &[56, 110],
            Family::Highway => &[8, 20, 32],
            Family::PlainMlp | Family::HighwayMlp | Family::ResnetMlp => &[10, 20, 30, 50, 100],
            Family::Fractal => &[3, 4],
            Family::Densenet => &[40],
            Family::DensenetBc => &[100],
        }
    }

    /// The name for number `size` (`resnet-20`, `densenet-40-12`).
    pub fn name(self, size: usize) -> String {
        match self {
            Family::Densenet | Family::DensenetBc => format!("{}-{size}-12", self.prefix()),
            _ => format!("{}-{size}", self.prefix()),
        }
    }

    /// The valid size nearest to `depth` (weight layers), for depth sweeps.
    pub fn size_for_depth(self, depth: usize) -> usize {
        self.sizes().into_iter().min_by_key(|&s| self.depth_of(s).abs_diff(depth)).unwrap_or(1)
    }

    /// The depth (weight layers) that number `size` stands for in a sweep.
    pub fn depth_of(self, size: usize) -> usize {
        match self {
            // fractal depth = blocks * 2^(C-1) + classifier
            Family::Fractal => FRACTAL_BLOCKS * (1 << (size.clamp(1, 32) - 1)) + 1,
            _ => size,
        }
    }

    /// The depth of the family's deepest preset.
    pub fn max_depth(self) -> usize {
        self.sizes().into_iter().map(|s| self.depth_of(s)).max().unwrap_or(0)
    }

    /// Builds the preset of number `size` for examples of shape `input`.
    pub fn build(self, size: usize, input: Shape) -> Result<Architecture, PresetError> {
        if !self.sizes().contains(&size) {
            return Err(PresetError::InvalidSize { name: self.name(size), family: self.prefix(), meaning: self.size_meaning() });
        }
        let mut arch = match self {
            Family::Plain => cifar_resnet(size, Shortcut::None, None),
            Family::Resnet => cifar_resnet(size, Shortcut::A, None),
            Family::ResnetSd => cifar_resnet(size, Shortcut::A, Some(StochasticDepth::default())),
            Family::PreactResnet => preact_resnet(size),
            Family::Highway => highway_conv(size),
            Family::PlainMlp => mlp(size, false),
            Family::HighwayMlp => mlp(size, true),
            Family::ResnetMlp => resnet_mlp(size),
            Family::Fractal => fractal(size, input),
            Family::Densenet => densenet(size, false),
            Family::DensenetBc => densenet(size, true),
        };
        arch.name = self.name(size);
        arch.description = self.summary().to_string();
        Ok(arch)
    }
}

/// The names `depthlab presets` lists.
pub fn featured() -> Vec<String> {
    Family::ALL.iter().flat_map(|f| f.featured_sizes().iter().map(move |&s| f.name(s))).collect()
}

/// Parses a preset name into its family and number.
pub fn parse_name(name: &str) -> Option<(Family, usize)> {
    let name = name.trim().to_ascii_lowercase();
    // DenseNet names carry the growth rate: densenet-40-12.
    for family in [Family::DensenetBc, Family::Densenet] {
        if let Some(rest) = name.strip_prefix(&format!("{}-", family.prefix())) {
            let mut parts = rest.split('-');
            let size = parts.next()?.parse().ok()?;
            return match parts.next() {
                None | Some("12") if parts.next().is_none() => Some((family, size)),
                _ => None,
            };
        }
    }
    let (prefix, number) = name.rsplit_once('-')?;
    let family = Family::from_prefix(prefix)?;
    Some((family, number.parse().ok()?))
}

/// A preset name that names no preset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error(
        "'{0}' is not a preset (families: {families}; try `depthlab presets`)",
        families = Family::ALL.iter().map(|f| format!("{}-N", f.prefix())).collect::<Vec<_>>().join(", ")
    )]
    Unknown(String),
    /// A family's name with a number it does not take (`resnet-21`).
    #[error("{name} is not a valid {family} preset ({meaning})")]
    InvalidSize { name: String, family: &'static str, meaning: &'static str },
}

/// Builds a preset by name for examples of shape `input`.
pub fn build(name: &str, input: Shape) -> Result<Architecture, PresetError> {
    let (family, size) = parse_name(name).ok_or_else(|| PresetError::Unknown(name.to_string()))?;
    family.build(size, input)
}

/// The transform-gate bias Srivastava et al. scale with depth: deeper highway
/// nets start closer to the identity.
pub fn highway_gate_bias(depth: usize) -> f32 {
    match depth {
        0..=10 => -1.0,
        11..=30 => -2.0,
        31..=60 => -3.0,
        _ => -4.0,
    }
}

const FRACTAL_BLOCKS: usize = 5;

fn layers(activation: Activation, norm: Norm) -> LayerOptions {
    LayerOptions { activation, norm, init: Default::default() }
}

fn conv(filters: usize) -> BlockSpec {
    BlockSpec::new(BlockKind::Conv { filters, kernel: 3, stride: 1 })
}

/// He et al.'s CIFAR residual block: two 3x3 convolutions, post-activation,
/// branches started by their own init.
pub(crate) fn residual(filters: usize, stride: usize, shortcut: Shortcut) -> BlockKind {
    BlockKind::Residual {
        filters,
        stride,
        bottleneck: false,
        preactivation: false,
        shortcut,
        survival: None,
        branch_layers: 2,
        residual_init: ResidualInit::Default,
    }
}

/// The final linear layer, initialised as PyTorch initialises `nn.Linear`
/// (uniform ±1/√fan_in): He's gain of 2 suits a layer followed by a ReLU,
/// not the logits.
fn classifier() -> BlockSpec {
    BlockSpec::new(BlockKind::Classifier).with_layer(LayerOptions { init: Init::Standard, ..LayerOptions::default() })
}

fn head() -> [BlockSpec; 2] {
    [BlockSpec::new(BlockKind::GlobalAvgPool), classifier()]
}

/// He et al.'s CIFAR ResNet (6n+2): a 16-filter stem, three stages of n
/// blocks at 16/32/64 filters, global average pooling, linear classifier.
fn cifar_resnet(depth: usize, shortcut: Shortcut, stochastic_depth: Option<StochasticDepth>) -> Architecture {
    let n = (depth - 2) / 6;
    let mut blocks = vec![conv(16)];
    for (stage, filters) in [16, 32, 64].into_iter().enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        blocks.push(BlockSpec::new(residual(filters, stride, shortcut)).repeated(n));
    }
    blocks.extend(head());
    Architecture { name: String::new(), description: String::new(), stochastic_depth, blocks }
}

/// He et al. 2016b: pre-activation blocks, basic (6n+2) below 164 layers and
/// bottleneck (9n+2) from 164, projection shortcuts where the shape changes,
/// a final BN-ReLU.
fn preact_resnet(depth: usize) -> Architecture {
    let bottleneck = depth >= 164;
    let n = if bottleneck { (depth - 2) / 9 } else { (depth - 2) / 6 };
    let mut blocks =
        vec![BlockSpec::new(BlockKind::Conv { filters: 16, kernel: 3, stride: 1 }).with_layer(layers(Activation::Linear, Norm::None))];
    for (stage, filters) in [16, 32, 64].into_iter().enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        blocks.push(
            BlockSpec::new(BlockKind::Residual {
                filters,
                stride,
                bottleneck,
                preactivation: true,
                shortcut: Shortcut::B,
                survival: None,
                branch_layers: 2,
                residual_init: ResidualInit::Default,
            })
            .repeated(n),
        );
    }
    blocks.push(BlockSpec::new(BlockKind::NormAct));
    blocks.extend(head());
    Architecture { name: String::new(), description: String::new(), stochastic_depth: None, blocks }
}

/// A convolutional highway network laid out like the CIFAR ResNet of the same
/// depth: a stem, 2n highway layers at 16 channels, then at 32 and 64 channels
/// a stride-2 plain conv followed by 2n-1 highway layers.
fn highway_conv(depth: usize) -> Architecture {
    let n = (depth - 2) / 6;
    let gate_bias = highway_gate_bias(depth);
    let highway = BlockKind::Highway { kernel: 3, carry: Carry::Coupled, gate_bias };
    let mut blocks = vec![conv(16), BlockSpec::new(highway.clone()).repeated(2 * n)];
    for filters in [32, 64] {
        blocks.push(BlockSpec::new(BlockKind::Conv { filters, kernel: 3, stride: 2 }));
        if 2 * n > 1 {
            blocks.push(BlockSpec::new(highway.clone()).repeated(2 * n - 1));
        }
    }
    blocks.extend(head());
    Architecture { name: String::new(), description: String::new(), stochastic_depth: None, blocks }
}

/// Srivastava et al.'s optimisation experiment: a plain layer maps the input
/// to the width, then depth-2 plain (71 units) or highway (50 units) layers,
/// then the classifier.
fn mlp(depth: usize, highway: bool) -> Architecture {
    let width = if highway { 50 } else { 71 };
    let options = layers(Activation::Relu, Norm::None);
    let mut blocks = vec![BlockSpec::new(BlockKind::Dense { units: width }).with_layer(options)];
    let hidden = depth - 2;
    if hidden > 0 {
        let kind = if highway {
            BlockKind::HighwayDense { carry: Carry::Coupled, gate_bias: highway_gate_bias(depth) }
        } else {
            BlockKind::Dense { units: width }
        };
        blocks.push(BlockSpec::new(kind).repeated(hidden).with_layer(options));
    }
    blocks.push(BlockSpec::new(BlockKind::Classifier).with_layer(LayerOptions { init: Init::Standard, ..options }));
    Architecture { name: String::new(), description: String::new(), stochastic_depth: None, blocks }
}

/// Plain-mlp's layout with identity shortcuts: a bare first layer of 71
/// units, then (depth - 2) / 2 pre-activation residual blocks of two 71-unit
/// layers (BN-ReLU-linear twice, `x + F(x)` with nothing after the addition,
/// He et al. 2016b), a final BN-ReLU and the classifier. Along the branches
/// every weight layer is followed by exactly one BN-activation, as in
/// plain-mlp: the first block's opens where plain-mlp's first layer's
/// closes (an activation on the stem too would squash the stream twice,
/// which sigmoid units do not survive). The shortcuts add no
/// weights: resnet-mlp-N has plain-mlp-N's weight matrices, with batch norm
/// (2 parameters per unit) where plain-mlp has biases (1), so about 0.5 %
/// more parameters, and about highway-mlp-N's. Batch norm is the paper's
/// recipe and here a necessity: without it each He-initialised block adds
/// as much variance as its input holds, and 14 blocks blow the signal up
/// 2^14-fold (`--norm none` diverges at the first steps). Pre-activation
/// keeps the identity path free of any activation, so that even sigmoid
/// units pass the gradient down unchanged.
fn resnet_mlp(depth: usize) -> Architecture {
    let width = 71;
    let options = layers(Activation::Relu, Norm::Batchnorm);
    let residual = BlockKind::ResidualDense {
        units: width,
        branch_layers: 2,
        preactivation: true,
        shortcut: Shortcut::B,
        survival: None,
        residual_init: ResidualInit::Default,
    };
    let blocks = vec![
        BlockSpec::new(BlockKind::Dense { units: width }).with_layer(layers(Activation::Linear, Norm::None)),
        BlockSpec::new(residual).repeated((depth - 2) / 2).with_layer(options),
        BlockSpec::new(BlockKind::NormAct).with_layer(options),
        BlockSpec::new(BlockKind::Classifier).with_layer(LayerOptions { init: Init::Standard, ..options }),
    ];
    Architecture { name: String::new(), description: String::new(), stochastic_depth: None, blocks }
}

/// Larsson et al.'s CIFAR FractalNet with the channel plan divided by 4
/// (16, 32, 64, 128, 128): five fractal blocks separated by 2x2 max pooling
/// while the map is at least 2x2, then global average pooling.
fn fractal(columns: usize, input: Shape) -> Architecture {
    let mut side = match input {
        Shape::Map { height, width, .. } => height.min(width),
        Shape::Flat { .. } => 1,
    };
    let mut blocks = Vec::new();
    for (b, filters) in [16, 32, 64, 128, 128].into_iter().enumerate() {
        blocks.push(BlockSpec::new(BlockKind::Fractal { columns, filters, local_drop: 0.15, global_ratio: 0.5 }));
        if b + 1 < FRACTAL_BLOCKS && side >= 2 {
            blocks.push(BlockSpec::new(BlockKind::MaxPool { size: 2, stride: 2 }));
            side /= 2;
        }
    }
    blocks.extend(head());
    Architecture { name: String::new(), description: String::new(), stochastic_depth: None, blocks }
}

/// Huang et al.'s CIFAR DenseNet: a 3x3 stem (16 channels, or 2k for BC),
/// three dense blocks with transitions between them, BN-ReLU, global average
/// pooling and the classifier. DenseNet-BC uses bottleneck layers (half as
/// many per block for the same depth) and compression 0.5.
fn densenet(depth: usize, bc: bool) -> Architecture {
    let growth_rate = 12;
    let per_block = if bc { (depth - 4) / 6 } else { (depth - 4) / 3 };
    let stem = if bc { 2 * growth_rate } else { 16 };
    let compression = if bc { 0.5 } else { 1.0 };
    let mut blocks =
        vec![BlockSpec::new(BlockKind::Conv { filters: stem, kernel: 3, stride: 1 }).with_layer(layers(Activation::Linear, Norm::None))];
    for stage in 0..3 {
        blocks.push(BlockSpec::new(BlockKind::DenseBlock { layers: per_block, growth_rate, bottleneck: bc }));
        if stage < 2 {
            blocks.push(BlockSpec::new(BlockKind::Transition { compression }));
        }
    }
    blocks.push(BlockSpec::new(BlockKind::NormAct));
    blocks.extend(head());
    Architecture { name: String::new(), description: String::new(), stochastic_depth: None, blocks }
}
