//! `model.py`: the architecture as PyTorch code. Each block kind the network
//! uses brings its class (the templates in `python/blocks/`, one per kind);
//! a network class lists the block instances in order, so that its
//! `state_dict()` names are `blocks.{i}.…` as [`super::weights`] writes
//! them.

use std::collections::BTreeSet;

use crate::arch::{Activation, Analysis, BlockKind, Carry, Instance, Norm, ResidualInit, Shape, Shortcut};
use crate::data::Normalization;
use crate::model::residual::ResidualOptions;
use crate::model::residual_dense::ResidualDenseOptions;

/// The Python classes a network can need, in the order they are defined
/// (a class comes after the classes it uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PyClass {
    ConvLayer,
    DenseLayer,
    ZeroPadShortcut,
    ProjectionShortcut,
    BranchScalars,
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    DenseProjection,
    ResidualDense,
    HighwayConv,
    HighwayDense,
    FractalBlock,
    DenseBlock,
    Transition,
    NormAct,
    GlobalAvgPool,
    Classifier,
}

impl PyClass {
    /// The class's source (for `DenseBlock`, with its `DenseUnit`).
    pub fn source(self) -> &'static str {
        match self {
            PyClass::ConvLayer => include_str!("python/blocks/conv_layer.py"),
            PyClass::DenseLayer => include_str!("python/blocks/dense_layer.py"),
            PyClass::ZeroPadShortcut => include_str!("python/blocks/zero_pad_shortcut.py"),
            PyClass::ProjectionShortcut => include_str!("python/blocks/projection_shortcut.py"),
            PyClass::BranchScalars => include_str!("python/blocks/branch_scalars.py"),
            PyClass::BasicBlock => include_str!("python/blocks/basic_block.py"),
            PyClass::Bottleneck => include_str!("python/blocks/bottleneck.py"),
            PyClass::PreActBasicBlock => include_str!("python/blocks/preact_basic_block.py"),
            PyClass::PreActBottleneck => include_str!("python/blocks/preact_bottleneck.py"),
            PyClass::DenseProjection => include_str!("python/blocks/dense_projection.py"),
            PyClass::ResidualDense => include_str!("python/blocks/residual_dense.py"),
            PyClass::HighwayConv => include_str!("python/blocks/highway_conv.py"),
            PyClass::HighwayDense => include_str!("python/blocks/highway_dense.py"),
            PyClass::FractalBlock => include_str!("python/blocks/fractal_block.py"),
            PyClass::DenseBlock => include_str!("python/blocks/dense_block.py"),
            PyClass::Transition => include_str!("python/blocks/transition.py"),
            PyClass::NormAct => include_str!("python/blocks/norm_act.py"),
            PyClass::GlobalAvgPool => include_str!("python/blocks/global_avg_pool.py"),
            PyClass::Classifier => include_str!("python/blocks/classifier.py"),
        }
    }
}

/// What `model.py` is generated from.
pub struct ModelSource<'a> {
    /// The architecture's name (`resnet-20`), or empty.
    pub name: &'a str,
    pub description: &'a str,
    pub analysis: &'a Analysis,
    pub class_names: &'a [String],
    pub normalization: &'a Normalization,
    /// Tabular data: the features' names and training ranges.
    pub features: Option<&'a crate::data::csv::FeatureScale>,
}

/// The longest line PEP 8 allows.
pub const MAX_LINE: usize = 79;
/// Indentation of a block in the network's list.
const ITEM_INDENT: usize = 12;

/// A Python constructor call at column `indent`, followed by a comma (an
/// item of the block list): on one line when it fits, else with the
/// arguments wrapped under the opening parenthesis, else (PEP 8's hanging
/// indent) on lines of their own.
fn call(name: &str, args: &[String], indent: usize) -> String {
    let one_line = format!("{name}({})", args.join(", "));
    if indent + one_line.len() < MAX_LINE {
        return one_line;
    }
    let aligned = indent + name.len() + 1;
    if let Some(lines) = fill(args, aligned, aligned) {
        return format!("{name}({})", lines.join(&format!("\n{}", " ".repeat(aligned))));
    }
    let hanging = indent + 4;
    match fill(args, hanging, hanging) {
        Some(lines) => format!("{name}(\n{}{})", " ".repeat(hanging), lines.join(&format!("\n{}", " ".repeat(hanging)))),
        None => one_line,
    }
}

/// `args` filled into lines starting at column `first` (then `column`),
/// each line ending in a comma (the last in `),`); `None` when an argument
/// does not fit.
fn fill(args: &[String], first: usize, column: usize) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut start = first;
    for (i, arg) in args.iter().enumerate() {
        let tail = if i + 1 == args.len() { 2 } else { 1 };
        let joined = if line.is_empty() { arg.clone() } else { format!("{line} {arg}") };
        if start + joined.len() + tail <= MAX_LINE {
            line = joined;
        } else {
            if line.is_empty() || column + arg.len() + tail > MAX_LINE {
                return None;
            }
            lines.push(std::mem::take(&mut line));
            start = column;
            line = arg.clone();
        }
        if tail == 1 {
            line.push(',');
        }
    }
    lines.push(line);
    Some(lines)
}

/// A float as a Python literal that reads back as the same `f32`.
fn py_float(x: f32) -> String {
    format!("{x:?}")
}

fn channels(shape: Shape) -> usize {
    match shape {
        Shape::Map { channels, .. } => channels,
        Shape::Flat { features } => features,
    }
}

/// The keyword arguments for a layer's activation and normalisation when
/// they differ from the classes' defaults (ReLU, batch norm).
fn layer_args(inst: &Instance) -> Vec<String> {
    let mut args = Vec::new();
    let activation = match inst.layer.activation {
        Activation::Relu => None,
        Activation::Tanh => Some("nn.Tanh"),
        Activation::Sigmoid => Some("nn.Sigmoid"),
        Activation::Linear => Some("nn.Identity"),
    };
    if let Some(a) = activation {
        args.push(format!("activation={a}"));
    }
    if inst.layer.norm == Norm::None {
        args.push("batch_norm=False".to_string());
    }
    args
}

/// The shortcut argument of a residual block, as the lab builds it
/// (`model::residual`), and the classes it needs.
fn shortcut_arg(inst: &Instance, shortcut: Shortcut, stride: usize, out: usize, used: &mut BTreeSet<PyClass>) -> String {
    let cin = channels(inst.input);
    let changes_shape = stride != 1 || cin != out;
    let projection = |used: &mut BTreeSet<PyClass>| {
        used.insert(PyClass::ProjectionShortcut);
        let mut args = vec![cin.to_string(), out.to_string()];
        if stride != 1 {
            args.push(format!("stride={stride}"));
        }
        if inst.layer.norm == Norm::None {
            args.push("batch_norm=False".to_string());
        }
        format!("shortcut=ProjectionShortcut({})", args.join(", "))
    };
    match shortcut {
        Shortcut::None => "shortcut=None".to_string(),
        Shortcut::A if changes_shape => {
            used.insert(PyClass::ZeroPadShortcut);
            format!("shortcut=ZeroPadShortcut({stride}, {})", out.saturating_sub(cin))
        }
        Shortcut::B if changes_shape => projection(used),
        Shortcut::C => projection(used),
        Shortcut::A | Shortcut::B => "shortcut=nn.Identity()".to_string(),
    }
}

/// The Python expression that builds a residual block (any variant, with
/// its shortcut and stochastic-depth survival), and the classes it needs.
fn residual(inst: &Instance, o: &ResidualOptions, used: &mut BTreeSet<PyClass>) -> String {
    let ResidualOptions { filters, stride, bottleneck, preactivation, shortcut, branch_layers, .. } = *o;
    let out = if bottleneck { 4 * filters } else { filters };
    let mut args = vec![channels(inst.input).to_string(), filters.to_string()];
    if stride != 1 {
        args.push(format!("stride={stride}"));
    }
    args.push(shortcut_arg(inst, shortcut, stride, out, used));
    if let Some(p) = o.survival.filter(|&p| p < 1.0 && shortcut != Shortcut::None) {
        args.push(format!("survival={}", py_float(p)));
    }
    args.extend(layer_args(inst));
    if !bottleneck && branch_layers != 2 {
        args.push(format!("layers={branch_layers}"));
    }
    let layers = if bottleneck { 3 } else { branch_layers };
    args.extend(scalars_arg(o.residual_init, shortcut, layers));
    // The residual join (and the scalars, where a block has them).
    used.insert(PyClass::BranchScalars);
    let (class, name) = match (bottleneck, preactivation) {
        (false, false) => (PyClass::BasicBlock, "BasicBlock"),
        (true, false) => (PyClass::Bottleneck, "Bottleneck"),
        (false, true) => (PyClass::PreActBasicBlock, "PreActBasicBlock"),
        (true, true) => (PyClass::PreActBottleneck, "PreActBottleneck"),
    };
    used.insert(class);
    call(name, &args, ITEM_INDENT)
}

/// The `scalars=` argument of a residual block whose initialisation left
/// learnable scalars in it (SkipInit, Fixup).
fn scalars_arg(init: ResidualInit, shortcut: Shortcut, layers: usize) -> Option<String> {
    match init {
        ResidualInit::Skipinit | ResidualInit::Fixup if shortcut != Shortcut::None => {
            Some(format!("scalars=BranchScalars(\"{}\", {layers})", init.word()))
        }
        _ => None,
    }
}

/// The Python expression that builds a fully connected residual block, and
/// the classes it needs.
fn residual_dense(inst: &Instance, o: &ResidualDenseOptions, used: &mut BTreeSet<PyClass>) -> String {
    let din = inst.input.numel();
    let mut args = vec![din.to_string(), o.units.to_string()];
    if o.branch_layers != 2 {
        args.push(format!("layers={}", o.branch_layers));
    }
    let projection = match o.shortcut {
        Shortcut::None => None,
        Shortcut::C => Some(true),
        Shortcut::A | Shortcut::B => Some(din != o.units),
    };
    args.push(match projection {
        None => "shortcut=None".to_string(),
        Some(true) => {
            used.insert(PyClass::DenseProjection);
            let norm = if inst.layer.norm == Norm::None { ", batch_norm=False" } else { "" };
            format!("shortcut=DenseProjection({din}, {}{norm})", o.units)
        }
        Some(false) => "shortcut=nn.Identity()".to_string(),
    });
    if o.preactivation {
        args.push("preactivation=True".to_string());
    }
    if let Some(p) = o.survival.filter(|&p| p < 1.0 && o.shortcut != Shortcut::None) {
        args.push(format!("survival={}", py_float(p)));
    }
    args.extend(layer_args(inst));
    args.extend(scalars_arg(o.residual_init, o.shortcut, o.branch_layers));
    used.insert(PyClass::BranchScalars);
    used.insert(PyClass::ResidualDense);
    call("ResidualDense", &args, ITEM_INDENT)
}

/// The Python expression that builds block instance `inst`, and the
/// classes it needs.
fn constructor(inst: &Instance, classes: usize, used: &mut BTreeSet<PyClass>) -> String {
    let cin = channels(inst.input);
    let mut use_class = |class: PyClass, name: &str, mut args: Vec<String>, layer: bool| {
        used.insert(class);
        if layer {
            args.extend(layer_args(inst));
        }
        call(name, &args, ITEM_INDENT)
    };
    match inst.kind {
        BlockKind::Conv { filters, kernel, stride } => {
            let mut args = vec![cin.to_string(), filters.to_string()];
            if kernel != 3 {
                args.push(format!("kernel_size={kernel}"));
            }
            if stride != 1 {
                args.push(format!("stride={stride}"));
            }
            use_class(PyClass::ConvLayer, "ConvLayer", args, true)
        }
        BlockKind::Dense { units } => {
            use_class(PyClass::DenseLayer, "DenseLayer", vec![inst.input.numel().to_string(), units.to_string()], true)
        }
        // (The Fixup branch count only sets starting values: 0 here.)
        BlockKind::Residual { .. } => residual(inst, &ResidualOptions::of(inst, 0).expect("a residual block"), used),
        BlockKind::ResidualDense { .. } => residual_dense(inst, &ResidualDenseOptions::of(inst, 0).expect("a dense residual block"), used),
        BlockKind::Highway { kernel, carry, gate_bias } => {
            let mut args = vec![cin.to_string()];
            if kernel != 3 {
                args.push(format!("kernel_size={kernel}"));
            }
            if carry == Carry::Independent {
                args.push("carry=\"independent\"".to_string());
            }
            args.push(format!("gate_bias={}", py_float(gate_bias)));
            use_class(PyClass::HighwayConv, "HighwayConv", args, true)
        }
        BlockKind::HighwayDense { carry, gate_bias } => {
            let mut args = vec![inst.input.numel().to_string()];
            if carry == Carry::Independent {
                args.push("carry=\"independent\"".to_string());
            }
            args.push(format!("gate_bias={}", py_float(gate_bias)));
            use_class(PyClass::HighwayDense, "HighwayDense", args, true)
        }
        BlockKind::Fractal { columns, filters, local_drop, .. } => {
            let args = vec![cin.to_string(), filters.to_string(), columns.to_string(), format!("local_drop={}", py_float(local_drop))];
            let text = use_class(PyClass::FractalBlock, "FractalBlock", args, true);
            // A fractal column is made of `ConvLayer`s.
            used.insert(PyClass::ConvLayer);
            text
        }
        BlockKind::DenseBlock { layers, growth_rate, bottleneck } => {
            let mut args = vec![cin.to_string(), layers.to_string(), growth_rate.to_string()];
            if bottleneck {
                args.push("bottleneck=True".to_string());
            }
            use_class(PyClass::DenseBlock, "DenseBlock", args, true)
        }
        BlockKind::Transition { .. } => {
            let out = channels(inst.output);
            use_class(PyClass::Transition, "Transition", vec![cin.to_string(), out.to_string()], true)
        }
        BlockKind::MaxPool { size, stride } => pool("nn.MaxPool2d", size, stride),
        BlockKind::AvgPool { size, stride } => pool("nn.AvgPool2d", size, stride),
        BlockKind::GlobalAvgPool => use_class(PyClass::GlobalAvgPool, "GlobalAvgPool", Vec::new(), false),
        BlockKind::NormAct => {
            let mut args = vec![cin.to_string()];
            args.extend(layer_args(inst));
            if matches!(inst.input, Shape::Flat { .. }) {
                args.push("flat=True".to_string());
            }
            use_class(PyClass::NormAct, "NormAct", args, false)
        }
        BlockKind::Dropout { p } => format!("nn.Dropout({})", py_float(p)),
        BlockKind::Classifier => {
            use_class(PyClass::Classifier, "Classifier", vec![inst.input.numel().to_string(), classes.to_string()], false)
        }
    }
}

fn pool(name: &str, size: usize, stride: usize) -> String {
    if size == stride { format!("{name}({size})") } else { format!("{name}({size}, {stride})") }
}

/// The network class's name: the architecture's name in CamelCase
/// (`resnet-20` → `Resnet20`), or `Network`.
pub fn class_name(name: &str) -> String {
    let camel: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    match camel.chars().next() {
        None => "Network".to_string(),
        Some(c) if c.is_ascii_digit() => format!("Net{camel}"),
        Some(_) => camel,
    }
}

/// A tuple literal, wrapped one item a line when it is long.
fn tuple(name: &str, items: &[String]) -> String {
    let one_line = match items {
        [single] => format!("{name} = ({single},)"),
        _ => format!("{name} = ({})", items.join(", ")),
    };
    if one_line.len() <= MAX_LINE {
        return one_line;
    }
    let lines: Vec<String> = items.iter().map(|i| format!("    {i},")).collect();
    format!("{name} = (\n{}\n)", lines.join("\n"))
}

/// Channels, height and width of one input, as `depthlab classify` feeds
/// it (a flat input is one row of pixels).
pub fn input_chw(input: Shape) -> (usize, usize, usize) {
    match input {
        Shape::Map { channels, height, width } => (channels, height, width),
        Shape::Flat { features } => (1, 1, features),
    }
}

/// The module docstring, imports and the run's constants.
fn preamble(source: &ModelSource, net_class: &str) -> String {
    let (c, h, w) = input_chw(source.analysis.input);
    let names = py_strings(source.class_names);
    let title = if source.name.is_empty() { "A network".to_string() } else { format!("{}, a network", source.name) };
    include_str!("python/model_head.py")
        .replace("{title}", &title)
        .replace("{net_class}", net_class)
        .replace("{input}", &format!("({c}, {h}, {w})"))
        .replace("{mean}", &tuple("MEAN", &py_floats(&source.normalization.mean)))
        .replace("{std}", &tuple("STD", &py_floats(&source.normalization.std)))
        .replace("{class_names}", &tuple("CLASS_NAMES", &names))
        .replace("{features}", &features(source.features))
}

/// Floats as Python literals.
fn py_floats(values: &[f32]) -> Vec<String> {
    values.iter().map(|&v| py_float(v)).collect()
}

/// Strings as Python literals (JSON's escaping is valid Python).
fn py_strings(values: &[String]) -> Vec<String> {
    values.iter().map(|n| serde_json::Value::from(n.as_str()).to_string()).collect()
}

/// The features' names and training ranges for tabular data (`None` for
/// images): predict.py scales a row by them.
fn features(scale: Option<&crate::data::csv::FeatureScale>) -> String {
    let Some(scale) = scale else {
        return "# Images: no table features.\nFEATURE_NAMES = FEATURE_MIN = FEATURE_MAX = None".to_string();
    };
    [
        "# A row of a table: each feature is scaled by its range over the training\n\
         # rows, (value - FEATURE_MIN) / (FEATURE_MAX - FEATURE_MIN) (value -\n\
         # FEATURE_MIN where the two are equal), then normalised."
            .to_string(),
        tuple("FEATURE_NAMES", &py_strings(&scale.names)),
        tuple("FEATURE_MIN", &py_floats(&scale.min)),
        tuple("FEATURE_MAX", &py_floats(&scale.max)),
    ]
    .join("\n")
}

/// The network class's docstring.
fn docstring(source: &ModelSource) -> String {
    let analysis = source.analysis;
    let name = if source.name.is_empty() { "The network" } else { source.name };
    let mut title = if source.description.is_empty() { name.to_string() } else { format!("{name}: {}", source.description) };
    if !title.ends_with('.') {
        title.push('.');
    }
    let (c, h, w) = input_chw(analysis.input);
    let facts = format!(
        "Depth {} (weight layers on the longest path), {} parameters. Input: [batch, {c}, {h}, {w}] normalised images; \
         output: [batch, {}] logits.",
        analysis.depth,
        thousands(analysis.params),
        analysis.classes
    );
    format!("    \"\"\"{}\n\n    {}\n    \"\"\"", wrap(&title, 4, 3), wrap(&facts, 4, 0))
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The network class: the block instances in a `ModuleList`.
fn network_class(source: &ModelSource, net_class: &str, used: &mut BTreeSet<PyClass>) -> String {
    let analysis = source.analysis;
    let mut items = Vec::new();
    let mut entry = None;
    for inst in &analysis.instances {
        if entry != Some(inst.entry) {
            entry = Some(inst.entry);
            let copies = analysis.instances.iter().filter(|i| i.entry == inst.entry).count();
            let times = if copies > 1 { format!(" x{copies}") } else { String::new() };
            items.push(format!("            # {} {}{times}", inst.entry + 1, inst.kind.title()));
        }
        items.push(format!("            {},", constructor(inst, analysis.classes, used)));
    }
    let fractal = analysis.instances.iter().find_map(|inst| match inst.kind {
        BlockKind::Fractal { columns, global_ratio, .. } => Some((columns, global_ratio)),
        _ => None,
    });
    let (fields, forward) = match fractal {
        Some((columns, global_ratio)) => (
            format!("        self.columns = {columns}\n        self.global_ratio = {}\n", py_float(global_ratio)),
            include_str!("python/forward_fractal.py"),
        ),
        None => (String::new(), include_str!("python/forward.py")),
    };
    format!(
        "class {net_class}(nn.Module):\n{}\n\n    def __init__(self):\n        super().__init__()\n{fields}        \
         self.blocks = nn.ModuleList([\n{}\n        ])\n\n{forward}",
        docstring(source),
        items.join("\n"),
    )
}

/// Wraps `text` into lines of at most [`MAX_LINE`] characters, indented by
/// `indent`, the first line after `first_extra` more characters (the
/// opening quotes of a docstring).
fn wrap(text: &str, indent: usize, first_extra: usize) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let start = if lines.len() == 1 { indent + first_extra } else { indent };
        let line = lines.last_mut().expect("lines starts with one line");
        if !line.is_empty() && start + line.len() + 1 + word.len() > MAX_LINE {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.join(&format!("\n{}", " ".repeat(indent)))
}

/// The whole of `model.py`.
pub fn model_py(source: &ModelSource) -> String {
    let net_class = class_name(source.name);
    let mut used = BTreeSet::new();
    let network = network_class(source, &net_class, &mut used);
    let mut parts = vec![preamble(source, &net_class).trim_end().to_string()];
    parts.extend(used.iter().map(|c| c.source().trim_end().to_string()));
    parts.push(network.trim_end().to_string());
    parts.push(include_str!("python/load_model.py").replace("{net_class}", &net_class).trim_end().to_string());
    parts.join("\n\n\n") + "\n"
}
