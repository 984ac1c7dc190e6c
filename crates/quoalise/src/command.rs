//! XEP-0050 ad-hoc commands with XEP-0004 forms, as Quoalise uses them:
//! one `set` carrying a submitted form, one `completed` answer.

use minidom::Element;

use crate::{COMMANDS_NS, DATA_FORMS_NS, Encoding, FEDWATT_NS, Result, element, malformed};

/// A command as it arrives: its node, its form's fields, and whether the
/// requester asked for compact data.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    /// The command's node: `get_history`, `subscribe`, `unsubscribe`, `urn:fedwatt:0#catalogue`.
    pub node: String,
    /// The XEP-0050 session, if the requester gave one.
    pub session: Option<String>,
    /// Submitted fields, in order, each with its first value.
    pub fields: Vec<(String, String)>,
    /// The encoding the requester accepts for data (fedwatt extension).
    pub accept: Encoding,
}

/// A request of the protocol, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The records of a stream in a time range (ISO 8601 with offset).
    GetHistory {
        /// The stream's name (an RFC 9039 URN by convention).
        identifier: String,
        /// Start, included.
        start_time: Option<String>,
        /// End, excluded.
        end_time: Option<String>,
    },
    /// Push the stream's new records.
    Subscribe {
        /// The stream's name.
        identifier: String,
    },
    /// Stop pushing them.
    Unsubscribe {
        /// The stream's name.
        identifier: String,
    },
    /// The streams the requester may see (fedwatt extension).
    Catalogue,
}

/// The catalogue command's node.
pub const CATALOGUE_NODE: &str = "urn:fedwatt:0#catalogue";

impl CommandRequest {
    /// Parses a `<command xmlns="http://jabber.org/protocol/commands">`.
    pub fn parse(command: &Element) -> Result<CommandRequest> {
        if !command.is("command", COMMANDS_NS) {
            return malformed(format!(
                "expected an ad-hoc command ({COMMANDS_NS}), got <{}>",
                command.name()
            ));
        }
        let Some(node) = command.attr("node") else {
            return malformed("the command has no node attribute");
        };
        let mut fields = Vec::new();
        for form in command.children().filter(|c| c.is("x", DATA_FORMS_NS)) {
            if let Some(t) = form.attr("type")
                && t != "submit"
            {
                return malformed(format!("the form is of type {t:?}, not \"submit\""));
            }
            for field in form.children().filter(|c| c.is("field", DATA_FORMS_NS)) {
                let Some(var) = field.attr("var") else {
                    return malformed("a form field has no var attribute");
                };
                let value = field
                    .get_child("value", DATA_FORMS_NS)
                    .map(|v| v.text())
                    .unwrap_or_default();
                fields.push((var.to_owned(), value));
            }
        }
        let accept = match command
            .get_child("accept", FEDWATT_NS)
            .and_then(|a| a.attr("encoding"))
        {
            Some("cbor") => Encoding::Cbor,
            _ => Encoding::Xml,
        };
        Ok(CommandRequest {
            node: node.to_owned(),
            session: command.attr("sessionid").map(str::to_owned),
            fields,
            accept,
        })
    }

    /// The first value of a field.
    pub fn field(&self, var: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, value)| value.as_str())
    }

    /// The request it makes, or what is wrong with it.
    pub fn request(&self) -> Result<Request> {
        let identifier = || match self.field("identifier").map(str::trim) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => malformed(format!(
                "{}: the field \"identifier\" is missing",
                self.node
            )),
        };
        let optional = |var: &str| {
            self.field(var)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        match self.node.as_str() {
            "get_history" => Ok(Request::GetHistory {
                identifier: identifier()?,
                start_time: optional("start_time"),
                end_time: optional("end_time"),
            }),
            "subscribe" => Ok(Request::Subscribe {
                identifier: identifier()?,
            }),
            "unsubscribe" => Ok(Request::Unsubscribe {
                identifier: identifier()?,
            }),
            CATALOGUE_NODE => Ok(Request::Catalogue),
            other => malformed(format!("unknown command {other:?}")),
        }
    }

    /// The `<command/>` element that sends this request.
    pub fn to_element(&self) -> Element {
        let mut form = element("x", DATA_FORMS_NS, &[("type", Some("submit"))]);
        for (var, value) in &self.fields {
            form = form.append(
                element("field", DATA_FORMS_NS, &[("var", Some(var))])
                    .append(Element::builder("value", DATA_FORMS_NS).append(value.as_str())),
            );
        }
        let mut command = element(
            "command",
            COMMANDS_NS,
            &[
                ("node", Some(&self.node)),
                ("action", Some("execute")),
                ("sessionid", self.session.as_deref()),
            ],
        )
        .append(form);
        if self.accept == Encoding::Cbor {
            command = command.append(element("accept", FEDWATT_NS, &[("encoding", Some("cbor"))]));
        }
        command.build()
    }
}

impl Request {
    /// The command that makes this request, accepting `accept` for data.
    pub fn to_command(&self, accept: Encoding) -> CommandRequest {
        let (node, fields): (&str, Vec<(&str, Option<&String>)>) = match self {
            Request::GetHistory {
                identifier,
                start_time,
                end_time,
            } => (
                "get_history",
                vec![
                    ("identifier", Some(identifier)),
                    ("start_time", start_time.as_ref()),
                    ("end_time", end_time.as_ref()),
                ],
            ),
            Request::Subscribe { identifier } => {
                ("subscribe", vec![("identifier", Some(identifier))])
            }
            Request::Unsubscribe { identifier } => {
                ("unsubscribe", vec![("identifier", Some(identifier))])
            }
            Request::Catalogue => (CATALOGUE_NODE, Vec::new()),
        };
        CommandRequest {
            node: node.to_owned(),
            session: None,
            fields: fields
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.clone())))
                .collect(),
            accept,
        }
    }
}

/// A `completed` answer to a command, carrying `payload`.
pub fn completed(node: &str, session: Option<&str>, payload: Vec<Element>) -> Element {
    element(
        "command",
        COMMANDS_NS,
        &[
            ("node", Some(node)),
            ("status", Some("completed")),
            ("sessionid", session),
        ],
    )
    .append_all(payload)
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoalise_get_history_parses() {
        let xml = r#"<command xmlns="http://jabber.org/protocol/commands" node="get_history" action="execute">
            <x xmlns="jabber:x:data" type="submit">
              <field var="identifier"><value>urn:dev:prm:30001610071843_consumption/power/active/raw</value></field>
              <field var="start_time"><value>2021-12-01T00:00:00+01:00</value></field>
              <field var="end_time"><value>2021-12-08T00:00:00+01:00</value></field>
            </x></command>"#;
        let c = CommandRequest::parse(&xml.parse().unwrap()).unwrap();
        assert_eq!(c.accept, Encoding::Xml);
        assert_eq!(
            c.request().unwrap(),
            Request::GetHistory {
                identifier: "urn:dev:prm:30001610071843_consumption/power/active/raw".into(),
                start_time: Some("2021-12-01T00:00:00+01:00".into()),
                end_time: Some("2021-12-08T00:00:00+01:00".into()),
            }
        );
    }

    #[test]
    fn requests_round_trip_through_their_command() {
        for r in [
            Request::GetHistory {
                identifier: "a".into(),
                start_time: None,
                end_time: Some("2021-12-08T00:00:00Z".into()),
            },
            Request::Subscribe {
                identifier: "b".into(),
            },
            Request::Unsubscribe {
                identifier: "c".into(),
            },
            Request::Catalogue,
        ] {
            let command = r.to_command(Encoding::Cbor).to_element();
            let back = CommandRequest::parse(&command).unwrap();
            assert_eq!(back.accept, Encoding::Cbor);
            assert_eq!(back.request().unwrap(), r);
        }
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let parse =
            |xml: &str| CommandRequest::parse(&xml.parse().unwrap()).and_then(|c| c.request());
        let e = parse(r#"<command xmlns="http://jabber.org/protocol/commands"/>"#);
        assert_eq!(
            e.unwrap_err().to_string(),
            "the command has no node attribute"
        );
        let e =
            parse(r#"<command xmlns="http://jabber.org/protocol/commands" node="get_history"/>"#);
        assert_eq!(
            e.unwrap_err().to_string(),
            "get_history: the field \"identifier\" is missing"
        );
        let e =
            parse(r#"<command xmlns="http://jabber.org/protocol/commands" node="drop_tables"/>"#);
        assert_eq!(
            e.unwrap_err().to_string(),
            "unknown command \"drop_tables\""
        );
        let e = parse(r#"<query xmlns="jabber:iq:version"/>"#);
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("expected an ad-hoc command")
        );
    }
}
