//! `ccr show`: any image (or a whole images directory) as JSON.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::image::{self, pb, ImageError, ImageKind};

fn to_value<M: prost::Message + Default + serde::Serialize>(path: &Path, kind: ImageKind) -> Result<Value> {
    let (_, m) = image::read_file::<M>(path, Some(kind))?;
    Ok(serde_json::to_value(&m).unwrap_or(Value::Null))
}

/// One framed image file as JSON, decoded by the kind its header names.
pub fn file_json(path: &Path) -> Result<Value> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with("pages-")
        || name.starts_with("shmem-")
        || name.starts_with("ghost-")
        || name.starts_with("sysvshm-")
    {
        let len = std::fs::metadata(path).map_err(|source| ImageError::Io { path: path.into(), source })?.len();
        return Ok(json!({ "raw_pages": len / 4096, "bytes": len }));
    }
    let (kind, _) = image::read_body(path, None)?;
    match kind {
        ImageKind::Inventory => to_value::<pb::Inventory>(path, kind),
        ImageKind::Core => to_value::<pb::TaskCore>(path, kind),
        ImageKind::Mm => to_value::<pb::Mm>(path, kind),
        ImageKind::Fds => to_value::<pb::Fds>(path, kind),
        ImageKind::Files => to_value::<pb::Files>(path, kind),
        ImageKind::Cgroup => to_value::<pb::CgroupImage>(path, kind),
        ImageKind::Stats => to_value::<pb::Stats>(path, kind),
    }
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
