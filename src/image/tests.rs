use super::*;
use std::path::Path;

fn tmpdir(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ccr-image-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn round_trip() {
    let d = tmpdir("rt");
    let dir = ImageDir::create(&d).unwrap();
    let inv = pb::Inventory { format_version: 1, root_pid: 42, ..Default::default() };
    dir.write(ImageKind::Inventory, None, &inv).unwrap();
    let back: pb::Inventory = dir.read(ImageKind::Inventory, None).unwrap();
    assert_eq!(back.root_pid, 42);
    std::fs::remove_dir_all(d).unwrap();
}

fn framed(kind: ImageKind, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&MAGIC);
    v.extend_from_slice(&kind.tag());
    v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    v.extend_from_slice(&crc32::crc32(body).to_le_bytes());
    v.extend_from_slice(&(body.len() as u64).to_le_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn corrupt_inputs_are_named() {
    let p = Path::new("x.img");
    let good = framed(ImageKind::Core, b"\x08\x2a");
    assert!(parse_frame(p, &good, Some(ImageKind::Core)).is_ok());
    assert!(matches!(parse_frame(p, b"", None), Err(ImageError::Truncated { .. })));
    assert!(matches!(parse_frame(p, b"\x7fELF\x02\x01\x01", None), Err(ImageError::BadMagic { .. })));
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert!(matches!(parse_frame(p, &bad_magic, None), Err(ImageError::BadMagic { .. })));
    assert!(matches!(parse_frame(p, &good, Some(ImageKind::Mm)), Err(ImageError::WrongKind { .. })));
    let mut bad_version = good.clone();
    bad_version[8] = 9;
    assert!(matches!(parse_frame(p, &bad_version, None), Err(ImageError::Version { found: 9, .. })));
    assert!(matches!(parse_frame(p, &good[..good.len() - 1], None), Err(ImageError::Truncated { .. })));
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(parse_frame(p, &flipped, None), Err(ImageError::Corrupt { .. })));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(parse_frame(p, &longer, None), Err(ImageError::Corrupt { .. })));
}

#[test]
fn file_names_map_to_kinds() {
    assert_eq!(ImageKind::Core.file_name(Some(7)), "core-7.img");
    assert_eq!(ImageKind::from_file_name("core-7.img"), Some(ImageKind::Core));
    assert_eq!(ImageKind::from_file_name("inventory.img"), Some(ImageKind::Inventory));
    assert_eq!(ImageKind::from_file_name("pages-7.img"), None);
}

#[test]
fn missing_file_is_named() {
    let d = tmpdir("missing");
    let dir = ImageDir::create(&d).unwrap();
    let e = dir.read::<pb::Inventory>(ImageKind::Inventory, None).unwrap_err();
    assert!(matches!(e, ImageError::Missing { .. }));
    assert!(e.to_string().contains("inventory.img"));
    std::fs::remove_dir_all(d).unwrap();
}
