//! The `[xmpp]` section of the node's configuration file, as written, and
//! how it becomes the run-time [`XmppConfig`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, XmppConfig, parse_full_jid};

/// `[xmpp]`: the node's XMPP account. Without a `jid`, the node runs
/// without federation.
///
/// An empty string reads as not set, and what is not set is not written.
///
/// ```
/// let section: federation::XmppSettings = toml::from_str(
///     r#"
///     jid = "fedwatt@agency.example/node"
///     password = "secret"
///     "#,
/// ).unwrap();
/// let config = section.config().unwrap().unwrap();
/// assert_eq!(config.address, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmppSettings {
    /// The node's full JID, with its resource (`fedwatt@agency.example/node`).
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub jid: Option<String>,
    /// Its password (or use `password_file`).
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub password: Option<String>,
    /// A file holding the password (read without its final line break).
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub password_file: Option<String>,
    /// `host:port` of the XMPP server; default: the domain's SRV records.
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub address: Option<String>,
    /// PEM file of the CA certificates to trust (self-hosted servers);
    /// default: the system's roots.
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub ca_file: Option<String>,
}

impl XmppSettings {
    /// The federation's settings, the JID checked and the password read;
    /// `None` when no `jid` is set.
    pub fn config(&self) -> Result<Option<XmppConfig>, Error> {
        let Some(jid) = &self.jid else {
            return Ok(None);
        };
        parse_full_jid(jid)?;
        let password = node::secret(
            self.password.as_deref(),
            self.password_file.as_deref().map(std::path::Path::new),
            "[xmpp]",
        )
        .map_err(Error::Setting)?
        .ok_or_else(|| {
            Error::Setting(format!(
                "[xmpp] jid {jid} is set, but neither password nor password_file"
            ))
        })?;
        Ok(Some(XmppConfig {
            jid: jid.clone(),
            password,
            address: self.address.clone(),
            ca_file: self.ca_file.as_ref().map(PathBuf::from),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<XmppSettings, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn no_jid_means_no_federation() {
        assert_eq!(
            XmppSettings::default().config().unwrap().map(|c| c.jid),
            None
        );
        assert_eq!(
            read("jid = \"\"").unwrap().config().unwrap().map(|c| c.jid),
            None
        );
    }

    #[test]
    fn a_section_reads_back_as_it_was_written() {
        let written = XmppSettings {
            jid: Some("fedwatt@a.example/node".into()),
            password: None,
            password_file: Some("/run/secrets/xmpp".into()),
            address: Some("127.0.0.1:5222".into()),
            ca_file: None,
        };
        let text = toml::to_string(&written).unwrap();
        assert!(!text.contains("password ="), "{text}");
        assert!(!text.contains("ca_file"), "{text}");
        assert_eq!(read(&text).unwrap(), written);
        assert_eq!(
            read(&toml::to_string(&XmppSettings::default()).unwrap()).unwrap(),
            XmppSettings::default()
        );
    }

    #[test]
    fn mistakes_are_named() {
        let e = read("jid = \"a@b/c\"\npasword = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pasword"), "{e}");
        let e = read("jid = \"fedwatt@a.example/node\"")
            .unwrap()
            .config()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "[xmpp] jid fedwatt@a.example/node is set, but neither password nor password_file"
        );
        let e = read("jid = \"a.example\"\npassword = \"x\"")
            .unwrap()
            .config()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("configuration: [xmpp] jid \"a.example\": "),
            "{e}"
        );
        let e = read("jid = \"fedwatt@a.example/node\"\npassword_file = \"/nonexistent/pw\"")
            .unwrap()
            .config()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("[xmpp] password_file /nonexistent/pw: "),
            "{e}"
        );
    }

    #[test]
    fn the_password_file_is_read_without_its_line_break() {
        let file = std::env::temp_dir().join(format!("fedwatt-xmpp-pw-{}", std::process::id()));
        std::fs::write(&file, "s3cret\n").unwrap();
        let section = XmppSettings {
            jid: Some("fedwatt@a.example/node".into()),
            password_file: Some(file.display().to_string()),
            ..XmppSettings::default()
        };
        assert_eq!(section.config().unwrap().unwrap().password, "s3cret");
        let _ = std::fs::remove_file(file);
    }
}
