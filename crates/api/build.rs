//! Embeds the built web UI (web/dist, made by scripts/web) in the binary:
//! writes `$OUT_DIR/ui_assets.rs`, one entry per file with its URL path,
//! content type, ETag, body and the gzip body scripts/web put beside it.
//! Without web/dist, a small page says how to build the UI, so that
//! `cargo build` alone still works.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ui_missing.html");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed=../../web/dist");
        walk(&dist, &mut files);
        files.sort();
    } else if web.is_dir() {
        // web/dist appearing changes web/'s own listing.
        println!("cargo:rerun-if-changed=../../web");
    }
    let mut out = String::from(
        "/// The embedded files of the web UI, sorted by path.\npub(crate) static ASSETS: &[Asset] = &[\n",
    );
    let built = !files.is_empty();
    if built {
        for file in &files {
            if file.extension().is_some_and(|e| e == "gz") {
                continue;
            }
            let relative = file
                .strip_prefix(&dist)
                .expect("walked under dist")
                .to_str()
                .expect("web/dist has UTF-8 file names")
                .replace('\\', "/");
            let body = std::fs::read(file).expect("web/dist is readable");
            let mut gz = file.clone().into_os_string();
            gz.push(".gz");
            let gz = PathBuf::from(gz);
            let gzip = if gz.is_file() {
                format!("Some(include_bytes!({:?}))", gz.display().to_string())
            } else {
                "None".into()
            };
            writeln!(
                out,
                "    Asset {{ path: {:?}, content_type: {:?}, etag: \"\\\"{:016x}\\\"\", body: include_bytes!({:?}), gzip: {gzip} }},",
                format!("/{relative}"),
                content_type(&relative),
                fnv1a(&body),
                file.display().to_string(),
            )
            .expect("writing to a String");
        }
    } else {
        let page = manifest.join("src/ui_missing.html");
        let body = std::fs::read(&page).expect("src/ui_missing.html is there");
        writeln!(
            out,
            "    Asset {{ path: \"/index.html\", content_type: \"text/html; charset=utf-8\", etag: \"\\\"{:016x}\\\"\", body: include_bytes!({:?}), gzip: None }},",
            fnv1a(&body),
            page.display().to_string(),
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    writeln!(
        out,
        "/// Whether web/dist was there when the binary was built.\npub(crate) const BUILT: bool = {built};"
    )
    .expect("writing to a String");
    let target =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("ui_assets.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("web/dist is readable");
    for entry in entries {
        let path = entry.expect("web/dist is readable").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: enough for an ETag, with no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
