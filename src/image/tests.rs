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
    let inv = pb::Inventory { root_pid: 42, ..Default::default() };
    dir.write(None, &inv).unwrap();
    let back: pb::Inventory = dir.read(None).unwrap();
    assert_eq!(back.root_pid, 42);
    std::fs::remove_dir_all(d).unwrap();
}

fn with_version(mut v: Vec<u8>, major: u16, minor: u16) -> Vec<u8> {
    v[8..10].copy_from_slice(&minor.to_le_bytes());
    v[10..12].copy_from_slice(&major.to_le_bytes());
    v
}

#[test]
fn corrupt_inputs_are_named() {
    let p = Path::new("x.img");
    let good = frame(ImageKind::Core, b"\x08\x2a");
    assert!(parse_frame(p, &good, Some(ImageKind::Core)).is_ok());
    assert!(matches!(parse_frame(p, b"", None), Err(ImageError::Truncated { .. })));
    assert!(matches!(parse_frame(p, b"\x7fELF\x02\x01\x01", None), Err(ImageError::BadMagic { .. })));
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert!(matches!(parse_frame(p, &bad_magic, None), Err(ImageError::BadMagic { .. })));
    assert!(matches!(parse_frame(p, &good, Some(ImageKind::Mm)), Err(ImageError::WrongKind { .. })));
    assert!(matches!(parse_frame(p, &good[..good.len() - 1], None), Err(ImageError::Truncated { .. })));
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(parse_frame(p, &flipped, None), Err(ImageError::Corrupt { .. })));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(parse_frame(p, &longer, None), Err(ImageError::Corrupt { .. })));
}

#[test]
fn versions_follow_the_compatibility_rule() {
    let p = Path::new("core-1.img");
    let good = frame(ImageKind::Core, b"\x08\x2a");
    // Every minor up to ours, of our major, is read.
    for minor in 0..=FORMAT_MINOR {
        assert!(readable(FORMAT_MAJOR, minor));
        assert!(parse_frame(p, &with_version(good.clone(), FORMAT_MAJOR, minor), None).is_ok());
    }
    // A newer minor is refused, saying so.
    let e = parse_frame(p, &with_version(good.clone(), FORMAT_MAJOR, FORMAT_MINOR + 1), None).unwrap_err();
    assert!(matches!(e, ImageError::Version { .. }));
    assert!(e.to_string().contains("newer ccr") && e.to_string().contains("core-1.img"), "{e}");
    // Another major, older or newer, is refused.
    for major in [FORMAT_MAJOR - 1, FORMAT_MAJOR + 1] {
        let e = parse_frame(p, &with_version(good.clone(), major, 0), None).unwrap_err();
        assert!(matches!(e, ImageError::Version { major: m, .. } if m == major), "{e}");
    }
}

#[test]
fn file_names_map_to_kinds() {
    assert_eq!(ImageKind::Core.file_name(Some(7)), "core-7.img");
    assert_eq!(ImageKind::from_file_name("core-7.img"), Some(ImageKind::Core));
    assert_eq!(ImageKind::from_file_name("inventory.img"), Some(ImageKind::Inventory));
    assert_eq!(ImageKind::from_file_name("pages-7.img"), Some(ImageKind::Pages));
    assert_eq!(ImageKind::from_file_name("core.img"), None);
    assert_eq!(ImageKind::from_file_name("inventory-3.img"), None);
    assert_eq!(ImageKind::from_file_name("core-x.img"), None);
    for d in kinds::KINDS {
        let n = (d.naming == kinds::Naming::Numbered).then_some(5);
        assert_eq!(ImageKind::from_file_name(&d.kind.file_name(n)), Some(d.kind), "{:?}", d.kind);
        if let Some(t) = d.tag {
            assert_eq!(ImageKind::from_tag(&t), Some(d.kind));
        }
    }
}

#[test]
fn missing_file_is_named() {
    let d = tmpdir("missing");
    let dir = ImageDir::create(&d).unwrap();
    let e = dir.read::<pb::Inventory>(None).unwrap_err();
    assert!(matches!(e, ImageError::Missing { .. }));
    assert!(e.to_string().contains("inventory.img"));
    std::fs::remove_dir_all(d).unwrap();
}
