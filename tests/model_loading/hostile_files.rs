//! CPU tests of model files that are not what they claim: paths that are not regular
//! files (refused without hanging on a FIFO or reading a device forever), safetensors
//! files whose size disagrees with their header, names given twice, parameters under
//! two names, and tensors a GPT-2 model does not have.

use host::model::{Weights, load_hf_dir};
use integration_tests::model_dir::{exported_then, read_tensors, temp_dir, tiny, write_tensors};
use safetensors::Dtype;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// The one-line error of loading `dir`, which must come within ten seconds (a FIFO
/// opened for reading would block forever).
fn load_error(dir: &Path) -> String {
    let dir = dir.to_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(load_hf_dir(&dir).map(|_| ())));
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("loading hung");
    let message = result.unwrap_err().to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_device_or_directory_is_refused_by_what_it_is() {
    let dir = exported_then("fifo", |_| {});
    let config = dir.path().join("config.json");
    std::fs::remove_file(&config).unwrap();
    mkfifo(&config);
    assert!(load_error(dir.path()).ends_with("config.json is a FIFO, not a regular file"));

    std::fs::remove_file(&config).unwrap();
    std::fs::create_dir(&config).unwrap();
    assert!(load_error(dir.path()).ends_with("config.json is a directory, not a regular file"));
    std::fs::remove_dir(&config).unwrap();
    std::fs::write(&config, tiny().to_hf_json().to_string()).unwrap();

    let weights = dir.path().join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &weights).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.ends_with("model.safetensors is a character device, not a regular file"),
        "{message}"
    );
    std::fs::remove_file(&weights).unwrap();
    mkfifo(&weights);
    assert!(load_error(dir.path()).ends_with("model.safetensors is a FIFO, not a regular file"));
}

#[test]
fn a_model_path_that_is_not_a_directory_says_what_it_is() {
    let dir = exported_then("notdir", |_| {});
    let file = dir.path().join("config.json");
    assert_eq!(
        load_error(&file),
        format!(
            "model path {} is a regular file; give the directory that holds config.json and model.safetensors",
            file.display()
        )
    );
    let a = dir.path().join("loop-a");
    let b = dir.path().join("loop-b");
    std::os::unix::fs::symlink(&a, &b).unwrap();
    std::os::unix::fs::symlink(&b, &a).unwrap();
    let message = load_error(&a);
    assert!(
        message.starts_with(&format!("cannot read {}: ", a.display()))
            && message.contains("symbolic links"),
        "{message}"
    );
}

#[test]
fn a_file_whose_size_disagrees_with_its_header_is_refused() {
    let dir = exported_then("size", |_| {});
    let path = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let described = bytes.len();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(&path, &bytes).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.ends_with(&format!(
            "the file is {} bytes but its header describes {described}",
            described + 8
        )),
        "{message}"
    );
    // A header length past the end of the file.
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.contains("the header claims 1099511627776 bytes"),
        "{message}"
    );
    std::fs::write(&path, b"short").unwrap();
    assert!(load_error(dir.path()).contains("5 bytes, shorter than the 8-byte header length"));
}

#[test]
fn a_name_given_twice_in_the_header_is_named() {
    let dir = exported_then("twice", |_| {});
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end();
    // Name one entry again (same offsets, so the file size still matches).
    let name = "transformer.ln_f.bias";
    let parsed: serde_json::Value = serde_json::from_str(header).unwrap();
    let entry = format!(",\"{name}\":{}", parsed[name]);
    let twice = format!("{}{entry}}}", &header[..header.len() - 1]);
    let mut out = (twice.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(twice.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(&path, out).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.ends_with(&format!("the header names {name} twice")),
        "{message}"
    );
}

#[test]
fn a_parameter_under_two_names_is_ambiguous() {
    let dir = exported_then("ambiguous", |tensors| {
        let mut ln_f = tensors
            .iter()
            .find(|t| t.0 == "transformer.ln_f.weight")
            .unwrap()
            .clone();
        ln_f.0 = "ln_f.weight".into();
        tensors.push(ln_f);
    });
    assert!(load_error(dir.path()).ends_with(
        "holds both ln_f.weight and transformer.ln_f.weight; which one the model is, is ambiguous"
    ));
}

#[test]
fn tensors_a_gpt2_model_does_not_have_are_refused() {
    let extra = |name: &str| {
        let name = name.to_owned();
        exported_then("extra", move |tensors| {
            tensors.push((name, Dtype::F16, vec![2], vec![0; 4]));
        })
    };
    let dir = extra("score.weight");
    assert!(load_error(dir.path()).ends_with(
        "holds tensor score.weight, which a GPT-2 (GPT2LMHeadModel) model does not have"
    ));
    let dir = extra("transformer.h.0.mlp.c_fc.weight_scale");
    assert!(load_error(dir.path()).contains("holds tensor transformer.h.0.mlp.c_fc.weight_scale,"));
    // The causal-mask buffers and a stored tied head load (transformers ignores both).
    for harmless in [
        "h.1.attn.bias",
        "transformer.h.0.attn.masked_bias",
        "lm_head.weight",
    ] {
        let dir = extra(harmless);
        load_hf_dir(dir.path()).unwrap_or_else(|e| panic!("{harmless}: {e}"));
    }
}

#[test]
fn loading_reads_only_what_the_header_describes() {
    // The data of a tensor the model does not use is never read: a huge stored tied head
    // costs no memory.
    let weights = Weights::random(&tiny(), 5);
    let dir = temp_dir("unread");
    host::model::export_hf_dir(&weights, dir.path()).unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = read_tensors(&path);
    tensors.push((
        "lm_head.weight".into(),
        Dtype::F16,
        vec![100, 128],
        vec![0; 25600],
    ));
    write_tensors(&path, &tensors);
    let loaded = load_hf_dir(dir.path()).unwrap();
    assert_eq!(loaded.wte, weights.wte);
}
