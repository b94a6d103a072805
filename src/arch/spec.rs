//! The architecture as pure data: the block kinds of the papers and their
//! options. Nothing here knows about tensors or windows.

use serde::{Deserialize, Serialize};

/// Version of the architecture JSON format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// A whole network: an ordered list of blocks applied to the input image.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub name: String,
    pub description: String,
    /// Stochastic depth (Huang et al. 2016) over every residual block.
    pub stochastic_depth: Option<StochasticDepth>,
    pub blocks: Vec<BlockSpec>,
}

/// The linear decay rule `p_l = 1 - (l / L)(1 - p_L)` over the `L` residual
/// blocks of the network.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StochasticDepth {
    /// Survival probability of the last residual block, `p_L` (0.5 in the paper).
    pub final_survival: f32,
}

impl Default for StochasticDepth {
    fn default() -> Self {
        Self { final_survival: 0.5 }
    }
}

/// One entry of the block list: a block kind, how often it repeats, and the
/// options shared by every weight layer in it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpec {
    pub kind: BlockKind,
    /// The block is applied this many times in a row (a stage of `n` blocks is
    /// one entry). A stride or channel change applies to the first copy only.
    pub repeat: usize,
    pub layer: LayerOptions,
}

impl BlockSpec {
    pub fn new(kind: BlockKind) -> Self {
        Self { kind, repeat: 1, layer: LayerOptions::default() }
    }

    pub fn repeated(mut self, repeat: usize) -> Self {
        self.repeat = repeat;
        self
    }

    pub fn with_layer(mut self, layer: LayerOptions) -> Self {
        self.layer = layer;
        self
    }
}

/// Activation, normalisation and initialisation of every weight layer in a
/// block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LayerOptions {
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub norm: Norm,
    #[serde(default)]
    pub init: Init,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Sigmoid,
    Linear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[default]
    Batchnorm,
    None,
}

/// Weight initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// He et al. 2015: normal with variance 2 / fan_in.
    #[default]
    He,
    /// Glorot & Bengio 2010 "normalized": uniform ±sqrt(6 / (fan_in + fan_out)).
    Xavier,
    /// The "standard" heuristic Glorot & Bengio compare against: uniform ±1/sqrt(fan_in).
    Standard,
}

/// How a residual block's shortcut is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Shortcut {
    /// No shortcut at all: the block is two (or three) plain layers. This is
    /// the "plain" twin of a residual network.
    #[serde(rename = "none")]
    None,
    /// Identity; when the shape changes, stride + zero-padded channels (no
    /// parameters). He et al. used it for every CIFAR model.
    #[default]
    #[serde(rename = "A")]
    A,
    /// Identity; when the shape changes, a 1x1 projection conv + BN.
    #[serde(rename = "B")]
    B,
    /// A 1x1 projection on every block, shape change or not.
    #[serde(rename = "C")]
    C,
}

/// How a residual branch starts: the lab's second answer to "why can
/// residual networks be so deep?". With He et al.'s default every branch
/// adds its variance to the stream, so a 1,202-layer net starts with logits
/// of standard deviation ~20; starting each branch at zero makes the whole
/// net start as the identity map, whatever its depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResidualInit {
    /// Every layer initialised by the layer's own rule (He et al. 2016).
    #[default]
    Default,
    /// The branch's last layer starts at zero: the γ of its last batch
    /// norm (Goyal et al. 2017), or, where the branch ends in a weight
    /// layer (pre-activation blocks, no normalisation), that layer's
    /// weights and bias. The branch adds 0, so the block starts as its
    /// shortcut.
    Zero,
    /// A learnable scalar α on the branch, starting at 0 (SkipInit, De &
    /// Smith 2020; ReZero, Bachlechner et al. 2020): `act(α·F(x) + x)`.
    Skipinit,
    /// Fixup (Zhang et al. 2019), for nets without normalisation: the
    /// branch's last layer starts at zero, the others are scaled by
    /// `L^(-1/(2m-2))` (`L` residual branches of `m` layers), scalar biases
    /// sit before each weight layer and activation, a scalar multiplier
    /// (1) on the branch, and the classifier starts at zero.
    Fixup,
}

impl ResidualInit {
    /// Every rule, in the order menus list them.
    pub const ALL: [ResidualInit; 4] = [ResidualInit::Default, ResidualInit::Zero, ResidualInit::Skipinit, ResidualInit::Fixup];

    /// The word used on the command line and in JSON.
    pub fn word(self) -> &'static str {
        match self {
            ResidualInit::Default => "default",
            ResidualInit::Zero => "zero",
            ResidualInit::Skipinit => "skipinit",
            ResidualInit::Fixup => "fixup",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == ResidualInit::Default
    }
}

/// How a highway layer's carry gate is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Carry {
    /// `C = 1 - T` (Srivastava et al.'s default).
    #[default]
    Coupled,
    /// `C = sigmoid(W_C x + b_C)` with its own weights.
    Independent,
}

/// Every block kind the lab knows. The JSON `kind` tag is the snake_case name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BlockKind {
    /// A plain convolution (conv-BN-activation).
    Conv {
        filters: usize,
        #[serde(default = "default_kernel")]
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
    },
    /// A plain fully connected layer (flattens its input).
    Dense {
        units: usize,
    },
    /// A residual block (He et al. 2016).
    Residual {
        /// Output channels of a basic block; bottleneck width of a bottleneck
        /// block (whose output has 4x as many channels).
        filters: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        bottleneck: bool,
        /// BN-ReLU-conv ordering with nothing after the addition (He et al. 2016b).
        #[serde(default)]
        preactivation: bool,
        #[serde(default)]
        shortcut: Shortcut,
        /// A fixed survival probability for stochastic depth; when absent the
        /// network-wide linear rule (if any) decides.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        survival: Option<f32>,
        /// Weight layers in the residual branch of a basic block, 1 to 4
        /// (He et al.'s 2; written to JSON only when it is not 2). A
        /// bottleneck block always holds 3 and keeps this at 2.
        #[serde(default = "two", skip_serializing_if = "is_two")]
        branch_layers: usize,
        /// How the residual branch starts (written only when not the default).
        #[serde(default, skip_serializing_if = "ResidualInit::is_default")]
        residual_init: ResidualInit,
    },
    /// A fully connected residual block: `branch_layers` dense layers in the
    /// branch, an identity shortcut, a dense projection when the width
    /// changes (He et al. 2016: "two weight layers, dense or convolutional").
    ResidualDense {
        units: usize,
        /// Weight layers in the residual branch, 1 to 4 (2 by default).
        #[serde(default = "two", skip_serializing_if = "is_two")]
        branch_layers: usize,
        /// Activation (and BN) before each dense layer, nothing after the
        /// addition (He et al. 2016b).
        #[serde(default)]
        preactivation: bool,
        /// `B` (the default): identity, a dense projection where the width
        /// changes; `C`: a projection in every block; `none`: the plain twin.
        /// Option A (zero padding) is refused where the width changes.
        #[serde(default = "projection_shortcut")]
        shortcut: Shortcut,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        survival: Option<f32>,
        /// How the residual branch starts (written only when not the default).
        #[serde(default, skip_serializing_if = "ResidualInit::is_default")]
        residual_init: ResidualInit,
    },
    /// A convolutional highway layer (Srivastava et al. 2015); keeps the shape.
    Highway {
        #[serde(default = "default_kernel")]
        kernel: usize,
        #[serde(default)]
        carry: Carry,
        #[serde(default = "default_gate_bias")]
        gate_bias: f32,
    },
    /// A fully connected highway layer; input and output have the same width.
    HighwayDense {
        #[serde(default)]
        carry: Carry,
        #[serde(default = "default_gate_bias")]
        gate_bias: f32,
    },
    /// A fractal block (Larsson et al. 2017) of `columns` columns.
    Fractal {
        columns: usize,
        filters: usize,
        #[serde(default = "default_local_drop")]
        local_drop: f32,
        #[serde(default = "default_global_ratio")]
        global_ratio: f32,
    },
    /// A dense block (Huang et al. 2017): each layer sees every earlier map.
    DenseBlock {
        layers: usize,
        growth_rate: usize,
        /// DenseNet-B: a 1x1 conv to 4k channels before each 3x3 conv.
        #[serde(default)]
        bottleneck: bool,
    },
    /// A DenseNet transition: BN-ReLU-conv1x1 to `compression` x channels, 2x2 average pool.
    Transition {
        #[serde(default = "default_compression")]
        compression: f32,
    },
    MaxPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default = "two")]
        stride: usize,
    },
    AvgPool {
        #[serde(default = "two")]
        size: usize,
        #[serde(default = "two")]
        stride: usize,
    },
    GlobalAvgPool,
    /// Normalisation and activation with no weight layer: the final BN-ReLU of
    /// pre-activation ResNets and DenseNets.
    NormAct,
    Dropout {
        p: f32,
    },
    /// The final linear layer: one output per class.
    Classifier,
}

fn default_kernel() -> usize {
    3
}
fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn is_two(value: &usize) -> bool {
    *value == 2
}
fn projection_shortcut() -> Shortcut {
    Shortcut::B
}
/// Fewest and most weight layers in a residual branch.
pub const BRANCH_LAYERS: std::ops::RangeInclusive<usize> = 1..=4;
fn default_gate_bias() -> f32 {
    -1.0
}
fn default_local_drop() -> f32 {
    0.15
}
fn default_global_ratio() -> f32 {
    0.5
}
fn default_compression() -> f32 {
    1.0
}

impl BlockKind {
    /// Every kind in palette order, each with sensible options.
    pub fn palette() -> Vec<BlockKind> {
        vec![
            BlockKind::Conv { filters: 16, kernel: 3, stride: 1 },
            BlockKind::Dense { units: 64 },
            BlockKind::Residual {
                filters: 16,
                stride: 1,
                bottleneck: false,
                preactivation: false,
                shortcut: Shortcut::A,
                survival: None,
                branch_layers: 2,
                residual_init: ResidualInit::Default,
            },
            BlockKind::ResidualDense {
                units: 64,
                branch_layers: 2,
                preactivation: false,
                shortcut: Shortcut::B,
                survival: None,
                residual_init: ResidualInit::Default,
            },
            BlockKind::Highway { kernel: 3, carry: Carry::Coupled, gate_bias: -1.0 },
            BlockKind::HighwayDense { carry: Carry::Coupled, gate_bias: -1.0 },
            BlockKind::Fractal { columns: 3, filters: 16, local_drop: 0.15, global_ratio: 0.5 },
            BlockKind::DenseBlock { layers: 6, growth_rate: 12, bottleneck: false },
            BlockKind::Transition { compression: 0.5 },
            BlockKind::MaxPool { size: 2, stride: 2 },
            BlockKind::AvgPool { size: 2, stride: 2 },
            BlockKind::GlobalAvgPool,
            BlockKind::NormAct,
            BlockKind::Dropout { p: 0.2 },
            BlockKind::Classifier,
        ]
    }

    /// The JSON tag of this kind (`"residual"`, `"max_pool"`, …).
    pub fn tag(&self) -> &'static str {
        match self {
            BlockKind::Conv { .. } => "conv",
            BlockKind::Dense { .. } => "dense",
            BlockKind::Residual { .. } => "residual",
            BlockKind::ResidualDense { .. } => "residual_dense",
            BlockKind::Highway { .. } => "highway",
            BlockKind::HighwayDense { .. } => "highway_dense",
            BlockKind::Fractal { .. } => "fractal",
            BlockKind::DenseBlock { .. } => "dense_block",
            BlockKind::Transition { .. } => "transition",
            BlockKind::MaxPool { .. } => "max_pool",
            BlockKind::AvgPool { .. } => "avg_pool",
            BlockKind::GlobalAvgPool => "global_avg_pool",
            BlockKind::NormAct => "norm_act",
            BlockKind::Dropout { .. } => "dropout",
            BlockKind::Classifier => "classifier",
        }
    }

    /// A short human name ("residual", "highway (dense)", "max pool").
    pub fn title(&self) -> &'static str {
        match self {
            BlockKind::Conv { .. } => "conv",
            BlockKind::Dense { .. } => "dense",
            BlockKind::Residual { shortcut: Shortcut::None, .. } => "plain pair",
            BlockKind::Residual { bottleneck: true, .. } => "residual bottleneck",
            BlockKind::Residual { .. } => "residual",
            BlockKind::ResidualDense { shortcut: Shortcut::None, .. } => "plain dense stack",
            BlockKind::ResidualDense { .. } => "residual (dense)",
            BlockKind::Highway { .. } => "highway",
            BlockKind::HighwayDense { .. } => "highway (dense)",
            BlockKind::Fractal { .. } => "fractal",
            BlockKind::DenseBlock { .. } => "dense block",
            BlockKind::Transition { .. } => "transition",
            BlockKind::MaxPool { .. } => "max pool",
            BlockKind::AvgPool { .. } => "avg pool",
            BlockKind::GlobalAvgPool => "global avg pool",
            BlockKind::NormAct => "norm + act",
            BlockKind::Dropout { .. } => "dropout",
            BlockKind::Classifier => "classifier",
        }
    }

    /// One or two sentences on what the block does and where it comes from.
    pub fn explanation(&self) -> &'static str {
        match self {
            BlockKind::Conv { .. } => {
                "A plain convolution followed by normalisation and an activation. Stacking many of \
                 these is the 'plain' network that He et al. (2016) found harder to optimise as it deepens."
            }
            BlockKind::Dense { .. } => {
                "A plain fully connected layer (the input is flattened first). Deep stacks of these with \
                 sigmoid or tanh show the vanishing gradients of Glorot & Bengio (2010)."
            }
            BlockKind::Residual { shortcut: Shortcut::None, .. } => {
                "Two conv layers with the shortcut removed: the plain twin of a residual block, \
                 with exactly the same weights (He et al. 2016)."
            }
            BlockKind::Residual { .. } => {
                "H(x) = relu(F(x) + x): two conv layers learn a residual F that is added to the input \
                 carried by a shortcut (He et al. 2016). The identity path lets signal and gradient \
                 pass through any depth."
            }
            BlockKind::ResidualDense { shortcut: Shortcut::None, .. } => {
                "Fully connected layers with the shortcut removed: the plain twin of a dense residual block, \
                 with exactly the same weights."
            }
            BlockKind::ResidualDense { .. } => {
                "y = F(x) + x with F made of fully connected layers (He et al. 2016: the residual function \
                 may be dense or convolutional). Gradient reaches the layers below through the identity \
                 however deep the stack, even with sigmoid units."
            }
            BlockKind::Highway { .. } | BlockKind::HighwayDense { .. } => {
                "y = H(x)·T(x) + x·C(x): a learned transform gate T decides how much of the layer's \
                 output replaces the carried input (Srivastava et al. 2015). A negative gate bias \
                 starts the layer close to the identity."
            }
            BlockKind::Fractal { .. } => {
                "f_{C+1}(z) = join(f_C(f_C(z)), conv(z)): columns of depth 1, 2, 4, … joined by their mean \
                 (Larsson et al. 2017). Drop-path trains each column to work alone, with no residuals at all."
            }
            BlockKind::DenseBlock { .. } => {
                "Each layer receives the concatenation of every earlier feature map in the block and adds \
                 k new channels (Huang et al. 2017): short paths from every layer to the loss."
            }
            BlockKind::Transition { .. } => {
                "DenseNet's transition between dense blocks: BN, 1x1 conv (compressing the channels by θ) \
                 and 2x2 average pooling (Huang et al. 2017)."
            }
            BlockKind::MaxPool { .. } => "Max pooling: keeps the largest value of each window, halving the map for 2x2.",
            BlockKind::AvgPool { .. } => "Average pooling: averages each window, halving the map for 2x2.",
            BlockKind::GlobalAvgPool => {
                "Averages each channel over the whole map, leaving one number per channel, as the CIFAR \
                 ResNets do before their classifier."
            }
            BlockKind::NormAct => {
                "Normalisation and activation with no weights: the final BN-ReLU of pre-activation ResNets \
                 (He et al. 2016b) and DenseNets."
            }
            BlockKind::Dropout { .. } => "Dropout: zeroes each unit with probability p during training only.",
            BlockKind::Classifier => "The final linear layer: one output (logit) per class, trained with softmax cross-entropy.",
        }
    }

    /// How the residual branch starts, for a residual block with a
    /// shortcut (`None` for every other block, plain twins included).
    pub fn residual_init(&self) -> Option<ResidualInit> {
        match *self {
            BlockKind::Residual { shortcut, residual_init, .. } | BlockKind::ResidualDense { shortcut, residual_init, .. }
                if shortcut != Shortcut::None =>
            {
                Some(residual_init)
            }
            _ => None,
        }
    }

    /// Sets how the residual branch starts, on residual blocks with a
    /// shortcut (a plain twin has no branch to start at zero).
    pub fn set_residual_init(&mut self, init: ResidualInit) {
        match self {
            BlockKind::Residual { shortcut, residual_init, .. } | BlockKind::ResidualDense { shortcut, residual_init, .. }
                if *shortcut != Shortcut::None =>
            {
                *residual_init = init;
            }
            _ => {}
        }
    }

    /// Whether the block has weight layers that the layer options affect.
    pub fn has_layers(&self) -> bool {
        !matches!(self, BlockKind::MaxPool { .. } | BlockKind::AvgPool { .. } | BlockKind::GlobalAvgPool | BlockKind::Dropout { .. })
    }
}

/// The shape of one example as it flows through the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Shape {
    /// Channels x height x width feature maps.
    Map { channels: usize, height: usize, width: usize },
    /// A flat vector of features.
    Flat { features: usize },
}

impl Shape {
    pub fn map(channels: usize, height: usize, width: usize) -> Self {
        Shape::Map { channels, height, width }
    }

    /// Number of scalars in one example.
    /// Values per example (saturating: an absurd shape reads as
    /// `usize::MAX`, which every size limit then refuses).
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Map { channels, height, width } => channels.saturating_mul(height).saturating_mul(width),
            Shape::Flat { features } => features,
        }
    }

    /// Dimensions as a list (`[C, H, W]` or `[F]`).
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Map { channels, height, width } => vec![channels, height, width],
            Shape::Flat { features } => vec![features],
        }
    }

    /// Parses `CxHxW` (or a single number for flat input).
    pub fn parse(text: &str) -> Result<Shape, ShapeError> {
        let parts: Vec<&str> = text.trim().split(['x', 'X']).collect();
        let numbers: Result<Vec<usize>, _> = parts.iter().map(|p| p.trim().parse::<usize>()).collect();
        let numbers = numbers.map_err(|_| ShapeError::NotAShape(text.to_string()))?;
        if numbers.contains(&0) {
            return Err(ShapeError::ZeroDimension(text.to_string()));
        }
        let values = numbers.iter().fold(1usize, |a, &b| a.saturating_mul(b));
        if values > super::infer::MAX_VALUES_PER_EXAMPLE {
            return Err(ShapeError::TooLarge { text: text.to_string(), values });
        }
        match numbers.as_slice() {
            [c, h, w] => Ok(Shape::map(*c, *h, *w)),
            [f] => Ok(Shape::Flat { features: *f }),
            _ => Err(ShapeError::NotAShape(text.to_string())),
        }
    }
}

/// Text that is not an example shape (`--input`, `folder:DIR@CxHxW`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("'{0}' is not a shape like 3x32x32")]
    NotAShape(String),
    #[error("'{0}': every dimension must be at least 1")]
    ZeroDimension(String),
    #[error("'{text}' is {values} values per example, more than the limit of {max}", max = super::infer::MAX_VALUES_PER_EXAMPLE)]
    TooLarge { text: String, values: usize },
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Shape::Map { channels, height, width } => write!(f, "{channels}x{height}x{width}"),
            Shape::Flat { features } => write!(f, "{features}"),
        }
    }
}
