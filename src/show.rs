//! `ccr show`: any image (or a whole images directory) as JSON, decoded by the
//! kinds table.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::image::{self, ImageError, ImageKind};

/// One image file as JSON: a framed one decoded by the kind its header names, raw
/// data by its size.
pub fn file_json(path: &Path) -> Result<Value> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if ImageKind::from_file_name(name).is_some_and(|k| k.tag().is_none()) {
        let len = std::fs::metadata(path).map_err(|source| ImageError::Io { path: path.into(), source })?.len();
        return Ok(ImageKind::show_raw(len));
    }
    let (kind, body) = image::read_body(path, None)?;
    let show = kind.desc().show.expect("framed kinds can be shown");
    show(&body).map_err(|e| ImageError::Corrupt { path: path.into(), detail: format!("protobuf: {e}") }.into())
}

/// A directory (every image in it, by file name) or one file, pretty-printed.
pub fn to_json(path: &Path) -> Result<String> {
    let v = if path.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(|source| ImageError::Dir { path: path.into(), source })?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".img"))
            .collect();
        names.sort();
        let mut m = Map::new();
        for n in names {
            m.insert(n.clone(), file_json(&path.join(&n))?);
        }
        Value::Object(m)
    } else {
        file_json(path)?
    };
    Ok(serde_json::to_string_pretty(&v).unwrap_or_default())
}
