//! Reading and writing architecture JSON, with errors that name the block.

use serde_json::{Map, Value};

use super::spec::{Architecture, BlockKind, BlockSpec, FORMAT_VERSION, LayerOptions, StochasticDepth};

/// Why an architecture file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArchError {
    #[error("the architecture JSON ends early (line {line}, column {column}): is the file truncated?")]
    Truncated { line: usize, column: usize },
    #[error("the architecture is not valid JSON (line {line}, column {column}): {message}")]
    Malformed { line: usize, column: usize, message: String },
    #[error("{0}")]
    Format(String),
    #[error("block {index}: {source}")]
    Block { index: usize, source: BlockJsonError },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// A name that is not a file and names no preset.
    #[error(transparent)]
    Preset(#[from] super::presets::PresetError),
}

/// Why one entry of an architecture's `"blocks"` list could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlockJsonError {
    #[error("a block must be a JSON object like {{\"kind\": \"conv\", …}}")]
    NotAnObject,
    #[error("has no \"kind\" (one of {})", known_kinds().join(", "))]
    NoKind,
    #[error("\"kind\" must be a string")]
    KindNotAString,
    #[error("unknown kind \"{0}\" (known kinds: {kinds})", kinds = known_kinds().join(", "))]
    UnknownKind(String),
    /// The block's options do not read (serde's message, without its position).
    #[error("({kind}) {message}")]
    Options { kind: String, message: String },
    /// A number past f32's range would be kept as infinity and written back as null.
    #[error("({kind}) \"{name}\" must be a finite number, not {value}")]
    NotFinite { kind: String, name: &'static str, value: f32 },
    #[error("({kind}) \"repeat\" must be a whole number")]
    Repeat { kind: String },
}

/// The JSON tags of every block kind, in palette order.
pub fn known_kinds() -> Vec<&'static str> {
    BlockKind::palette().iter().map(BlockKind::tag).collect()
}

const COMMON_KEYS: [&str; 4] = ["repeat", "activation", "norm", "init"];

impl Architecture {
    /// Parses an architecture from JSON text.
    pub fn from_json(text: &str) -> Result<Architecture, ArchError> {
        // Editors on some systems start a UTF-8 file with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = serde_json::from_str(text).map_err(|e| {
            if e.is_eof() {
                ArchError::Truncated { line: e.line(), column: e.column() }
            } else {
                ArchError::Malformed { line: e.line(), column: e.column(), message: strip_position(&e.to_string()) }
            }
        })?;
        Architecture::from_value(&value)
    }

    /// Reads an architecture JSON file.
    pub fn load(path: &std::path::Path) -> Result<Architecture, ArchError> {
        let text = std::fs::read_to_string(path).map_err(|e| ArchError::Io { path: path.display().to_string(), message: e.to_string() })?;
        Architecture::from_json(&text)
    }

    /// Parses an architecture from a JSON value.
    pub fn from_value(value: &Value) -> Result<Architecture, ArchError> {
        let object =
            value.as_object().ok_or_else(|| ArchError::Format("an architecture must be a JSON object with a \"blocks\" list".into()))?;
        for key in object.keys() {
            if !["format_version", "name", "description", "stochastic_depth", "blocks"].contains(&key.as_str()) {
                return Err(ArchError::Format(format!(
                    "unknown field \"{key}\" (expected format_version, name, description, stochastic_depth, blocks)"
                )));
            }
        }
        if let Some(version) = object.get("format_version") {
            let version = version.as_u64().ok_or_else(|| ArchError::Format("\"format_version\" must be a whole number".into()))?;
            if version > u64::from(FORMAT_VERSION) {
                return Err(ArchError::Format(format!(
                    "format version {version} is newer than this depthlab understands ({FORMAT_VERSION})"
                )));
            }
        }
        let name = match object.get("name") {
            None => "unnamed".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(ArchError::Format("\"name\" must be a string".into())),
        };
        let description = match object.get("description") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(ArchError::Format("\"description\" must be a string".into())),
        };
        let stochastic_depth = match object.get("stochastic_depth") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let sd = serde_json::from_value::<StochasticDepth>(v.clone())
                    .map_err(|e| ArchError::Format(format!("\"stochastic_depth\": {}", strip_position(&e.to_string()))))?;
                if !(sd.final_survival > 0.0 && sd.final_survival <= 1.0) {
                    return Err(ArchError::Format(format!(
                        "\"stochastic_depth\": final_survival must be in (0, 1] (the last block's probability of being kept), not {}",
                        sd.final_survival
                    )));
                }
                Some(sd)
            }
        };
        let blocks = object
            .get("blocks")
            .ok_or_else(|| ArchError::Format("the architecture has no \"blocks\" list".into()))?
            .as_array()
            .ok_or_else(|| ArchError::Format("\"blocks\" must be a list".into()))?;
        let blocks = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| block_from_value(b).map_err(|source| ArchError::Block { index: i + 1, source }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Architecture { name, description, stochastic_depth, blocks })
    }

    /// The architecture as a JSON value (format version included).
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("format_version".into(), Value::from(FORMAT_VERSION));
        object.insert("name".into(), Value::from(self.name.clone()));
        if !self.description.is_empty() {
            object.insert("description".into(), Value::from(self.description.clone()));
        }
        if let Some(sd) = &self.stochastic_depth {
            object.insert("stochastic_depth".into(), serde_json::to_value(sd).unwrap_or(Value::Null));
        }
        object.insert("blocks".into(), Value::Array(self.blocks.iter().map(block_to_value).collect()));
        Value::Object(object)
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }
}

fn block_from_value(value: &Value) -> Result<BlockSpec, BlockJsonError> {
    let object = value.as_object().ok_or(BlockJsonError::NotAnObject)?;
    let kind_tag = match object.get("kind") {
        None => return Err(BlockJsonError::NoKind),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(BlockJsonError::KindNotAString),
    };
    if !known_kinds().contains(&kind_tag.as_str()) {
        return Err(BlockJsonError::UnknownKind(kind_tag));
    }
    let mut kind_fields = Map::new();
    let mut common = Map::new();
    for (key, v) in object {
        if COMMON_KEYS.contains(&key.as_str()) {
            common.insert(key.clone(), v.clone());
        } else {
            kind_fields.insert(key.clone(), v.clone());
        }
    }
    let options = |e: serde_json::Error| BlockJsonError::Options { kind: kind_tag.clone(), message: strip_position(&e.to_string()) };
    let kind: BlockKind = serde_json::from_value(Value::Object(kind_fields)).map_err(options)?;
    if let Some((name, value)) = float_fields(&kind).into_iter().find(|(_, v)| !v.is_finite()) {
        return Err(BlockJsonError::NotFinite { kind: kind_tag, name, value });
    }
    let repeat = match common.remove("repeat") {
        None => 1,
        Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| BlockJsonError::Repeat { kind: kind_tag.clone() })?,
    };
    let layer: LayerOptions = serde_json::from_value(Value::Object(common)).map_err(options)?;
    // A block without weight layers (a pool, dropout) has no activation,
    // norm or init of its own: options given for it are checked and dropped,
    // as they are when it is written.
    let layer = if kind.has_layers() { layer } else { LayerOptions::default() };
    Ok(BlockSpec { kind, repeat, layer })
}

/// The fractional options of a block, by their JSON names.
fn float_fields(kind: &BlockKind) -> Vec<(&'static str, f32)> {
    match *kind {
        BlockKind::Residual { survival: Some(s), .. } | BlockKind::ResidualDense { survival: Some(s), .. } => vec![("survival", s)],
        BlockKind::Highway { gate_bias, .. } | BlockKind::HighwayDense { gate_bias, .. } => vec![("gate_bias", gate_bias)],
        BlockKind::Fractal { local_drop, global_ratio, .. } => vec![("local_drop", local_drop), ("global_ratio", global_ratio)],
        BlockKind::Transition { compression } => vec![("compression", compression)],
        BlockKind::Dropout { p } => vec![("p", p)],
        _ => Vec::new(),
    }
}

fn block_to_value(block: &BlockSpec) -> Value {
    let mut value = serde_json::to_value(&block.kind).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        if block.repeat != 1 {
            object.insert("repeat".into(), Value::from(block.repeat));
        }
        if block.kind.has_layers()
            && let Ok(Value::Object(layer)) = serde_json::to_value(block.layer)
        {
            object.extend(layer);
        }
    }
    value
}

/// serde_json appends " at line L column C" to its messages; the block index
/// says more to a user than a column in a one-block value.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
