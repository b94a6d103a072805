//! TensorBoard event files, written beside a run's CSVs so TensorBoard,
//! W&B (`wandb sync --sync-tensorboard`) and Aim (`aim convert
//! tensorboard`) open the lab's runs as they open their own.
//!
//! The format is small: a file of records, each `u64` length, the masked
//! CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data;
//! each record's data an `Event` protocol buffer (TensorFlow's
//! `event.proto`, `summary.proto`). The first event names the format
//! (`brain.Event:2`); scalars are `Summary.Value.simple_value`; the
//! hyperparameters are the hparams plugin's session start and end
//! summaries. The messages are encoded by hand here: a few fields of five
//! message types.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The start of every event file's name (TensorBoard finds event files by
/// the `tfevents` in their names).
pub const EVENT_FILE_PREFIX: &str = "events.out.tfevents.";

/// Whether a file name is one of the lab's event files.
pub fn is_event_file(name: &str) -> bool {
    name.starts_with(EVENT_FILE_PREFIX)
}

/// CRC-32C (Castagnoli), reflected, as TFRecord files use it.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The masked CRC of TFRecord files (a CRC of data that holds CRCs is
/// weak; the rotation and offset avoid it).
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One protocol-buffer message being encoded.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn uint(mut self, field: u32, value: u64) -> Self {
        self.key(field, 0);
        self.varint(value);
        self
    }

    fn double(mut self, field: u32, value: f64) -> Self {
        self.key(field, 1);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn float(mut self, field: u32, value: f32) -> Self {
        self.key(field, 5);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn bytes(mut self, field: u32, value: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }

    fn text(self, field: u32, value: &str) -> Self {
        self.bytes(field, value.as_bytes())
    }

    fn message(self, field: u32, value: Message) -> Self {
        self.bytes(field, &value.0)
    }
}

/// A hyperparameter's value (`google.protobuf.Value`).
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl std::fmt::Display for HParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HParam::Number(v) => write!(f, "{v}"),
            HParam::Text(s) => f.write_str(s),
            HParam::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// How a run ended, for the hparams plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Success = 1,
    Failure = 2,
}

/// The hparams plugin's summary: an empty float tensor whose metadata
/// carries `HParamsPluginData` with `data` in field `field`.
fn hparams_summary(tag: &str, field: u32, data: Message) -> Message {
    let plugin_data = Message::default().message(field, data);
    let metadata = Message::default().message(1, Message::default().text(1, "hparams").message(2, plugin_data));
    // DT_FLOAT, shape [0] (a dimension of size 0 encodes as an empty message).
    let empty_tensor = Message::default().uint(1, 1).message(2, Message::default().message(2, Message::default()));
    let value = Message::default().text(1, tag).message(9, metadata).message(8, empty_tensor);
    Message::default().message(1, value)
}

/// An event file being written; every call writes whole records and
/// flushes them, so a run killed mid-way leaves a file that reads up to
/// its last whole record.
pub struct EventFile {
    path: PathBuf,
    file: File,
}

impl EventFile {
    /// Creates `events.out.tfevents.<started>.<host>.<pid>.depthlab` in
    /// `dir` and writes the format's first event.
    pub fn create(dir: &Path, started_unix_secs: u64) -> std::io::Result<EventFile> {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let path = dir.join(format!("{EVENT_FILE_PREFIX}{started_unix_secs}.{host}.{}.depthlab", std::process::id()));
        let mut events = EventFile { file: File::create(&path)?, path };
        let first = Message::default().double(1, started_unix_secs as f64).text(3, "brain.Event:2");
        events.write(&[first])?;
        Ok(events)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scalars at one step, one event.
    pub fn scalars(&mut self, step: usize, wall_time: f64, values: &[(&str, f32)]) -> std::io::Result<()> {
        let mut summary = Message::default();
        for (tag, value) in values {
            summary = summary.message(1, Message::default().text(1, tag).float(2, *value));
        }
        let event = Message::default().double(1, wall_time).uint(2, step as u64).message(5, summary);
        self.write(&[event])
    }

    /// The run's hyperparameters (the hparams plugin's session start).
    pub fn hparams(&mut self, wall_time: f64, hparams: &[(String, HParam)]) -> std::io::Result<()> {
        let mut start = Message::default();
        for (name, value) in hparams {
            let value = match value {
                HParam::Number(v) => Message::default().double(2, *v),
                HParam::Text(s) => Message::default().text(3, s),
                HParam::Bool(b) => Message::default().uint(4, u64::from(*b)),
            };
            start = start.message(1, Message::default().text(1, name).message(2, value));
        }
        let start = start.double(5, wall_time);
        let event = Message::default().double(1, wall_time).message(5, hparams_summary("_hparams_/session_start_info", 3, start));
        self.write(&[event])
    }

    /// How the run ended (the hparams plugin's session end).
    pub fn session_end(&mut self, wall_time: f64, status: SessionStatus) -> std::io::Result<()> {
        let end = Message::default().uint(1, status as u64).double(2, wall_time);
        let event = Message::default().double(1, wall_time).message(5, hparams_summary("_hparams_/session_end_info", 4, end));
        self.write(&[event])
    }

    /// Writes the events as records in one write, then flushes.
    fn write(&mut self, events: &[Message]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for event in events {
            let len = (event.0.len() as u64).to_le_bytes();
            out.extend_from_slice(&len);
            out.extend_from_slice(&masked_crc(&len).to_le_bytes());
            out.extend_from_slice(&event.0);
            out.extend_from_slice(&masked_crc(&event.0).to_le_bytes());
        }
        self.file.write_all(&out)?;
        self.file.flush()
    }
}

/// The leaves of a JSON value as hyperparameters, named by their path
/// (`config.lr`, `config.overrides.activation`); nulls are left out.
pub fn flatten_hparams(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, HParam)>) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((prefix.to_string(), HParam::Bool(*b))),
        Value::Number(n) => out.push((prefix.to_string(), HParam::Number(n.as_f64().unwrap_or(f64::NAN)))),
        Value::String(s) => out.push((prefix.to_string(), HParam::Text(s.clone()))),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_hparams(&format!("{prefix}.{i}"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten_hparams(&name, item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn varints_and_keys_encode_as_protocol_buffers_do() {
        // Field 1 = 150 is 08 96 01 in the protocol-buffer documentation.
        assert_eq!(Message::default().uint(1, 150).0, [0x08, 0x96, 0x01]);
        assert_eq!(Message::default().text(2, "testing").0, b"\x12\x07testing");
        assert_eq!(Message::default().float(2, 1.0).0, [0x15, 0, 0, 0x80, 0x3f]);
    }

    #[test]
    fn records_frame_their_data_with_masked_checksums() {
        let dir = std::env::temp_dir().join(format!("depthlab-tfevents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut events = EventFile::create(&dir, 1_700_000_000).unwrap();
        events.scalars(3, 1_700_000_001.5, &[("train/loss", 2.5)]).unwrap();
        let bytes = std::fs::read(events.path()).unwrap();
        let mut at = 0;
        let mut records = 0;
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()), masked_crc(&bytes[at..at + 8]));
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()), masked_crc(data));
            at += 16 + len;
            records += 1;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(records, 2);
        assert!(is_event_file(&events.path().file_name().unwrap().to_string_lossy()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
