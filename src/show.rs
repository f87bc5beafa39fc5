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

/// `ccr show --verify DIR`: every framed image decodes and passes its header
/// checksum, the images agree with each other as a restore checks them, and every
/// raw data file matches its checksums. A summary line, or the first error.
pub fn verify(path: &Path) -> Result<String> {
    let dir = image::ImageDir::open(path)?;
    let (ckpt, sums) = crate::restore::images::load(&dir)?;
    let names = dir.names(true)?;
    for name in &names {
        file_json(&path.join(name))?;
    }
    let framed = names.len();
    let tasks = ckpt.inventory.tasks.len();
    let Some(sums) = sums else {
        return Ok(format!(
            "{}: {framed} images, {tasks} tasks: consistent; its data has no checksums (format before 2.2)",
            path.display()
        ));
    };
    crate::image::sums::verify_all(&dir, &sums, &crate::restore::images::required_raw(&ckpt))?;
    let bytes: u64 = sums.files.iter().map(|f| f.size).sum();
    Ok(format!(
        "{}: {framed} images, {tasks} tasks: consistent; {} data files ({bytes} bytes) match their checksums",
        path.display(),
        sums.files.len()
    ))
}
