//! What every component's settings share: secrets given inline or in a
//! file of their own, and optional values that an empty string leaves
//! unset.

use std::path::Path;

use serde::{Deserialize, Deserializer};

/// Reads an optional setting where an empty string means unset, as the
/// example configuration writes what it leaves unset (`broker = ""`):
/// `#[serde(default, deserialize_with = "node::unset_if_empty")]` on an
/// `Option<String>` or `Option<PathBuf>` field.
pub fn unset_if_empty<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.filter(|t| !t.is_empty()).map(T::from))
}

/// A secret given inline (`password`) or in a file of its own
/// (`password_file`, read without its final line break), the inline one
/// first; `None` if neither. A file that cannot be read is an error naming
/// `section`'s `password_file` and the file.
pub fn secret(
    inline: Option<&str>,
    file: Option<&Path>,
    section: &str,
) -> Result<Option<String>, String> {
    if let Some(secret) = inline {
        return Ok(Some(secret.to_owned()));
    }
    let Some(file) = file else { return Ok(None) };
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{section} password_file {}: {e}", file.display()))?;
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_first_then_the_file_without_its_line_break_and_errors_name_the_file() {
        let file = std::env::temp_dir().join(format!("fedwatt-secret-{}", std::process::id()));
        std::fs::write(&file, "s3cret\r\n").unwrap();
        assert_eq!(
            secret(Some("a"), Some(&file), "[xmpp]"),
            Ok(Some("a".into()))
        );
        assert_eq!(
            secret(None, Some(&file), "[xmpp]"),
            Ok(Some("s3cret".into()))
        );
        assert_eq!(secret(None, None, "[xmpp]"), Ok(None));
        std::fs::remove_file(&file).unwrap();
        let e = secret(None, Some(&file), "[control]").unwrap_err();
        assert!(
            e.starts_with("[control] password_file /") && e.contains("fedwatt-secret"),
            "{e}"
        );
    }
}
