//! Cooperative projects (a PV plant on a school roof) and the shares their
//! investors hold. An investor is named by an account name, as text: the
//! store checks its syntax, not that such an account exists.
//!
//! The database checks what one row can (ids, positive shares, prices not
//! negative); the store checks the rest in the transaction that writes:
//! the shares of a project never add up to more than its total.

use serde::Serialize;

use crate::db::{Cell, Db, Dialect, Param};
use crate::error::{Error, Result};

/// The tables, with `{int}`, `{real}` and `{id_check}` in the backend's
/// dialect.
const SCHEMA: &str = r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY CHECK ({id_check}),
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description TEXT NOT NULL,
    total_shares {int} NOT NULL CHECK (total_shares > 0),
    share_price {real} NOT NULL CHECK (share_price >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    panel_area_m2 {real} NOT NULL CHECK (panel_area_m2 > 0),
    production_stream TEXT NOT NULL CHECK (length(production_stream) > 0),
    maintenance_budget {real} NOT NULL CHECK (maintenance_budget >= 0),
    commissioned TEXT NOT NULL CHECK (length(commissioned) = 10)
);
CREATE TABLE investments (
    project TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    account TEXT NOT NULL CHECK (length(account) BETWEEN 1 AND 64),
    shares {int} NOT NULL CHECK (shares > 0),
    PRIMARY KEY (project, account)
);
"#;

/// [`SCHEMA`] in one backend's dialect.
pub(crate) fn schema(dialect: Dialect) -> String {
    let (int, real, id_check) = match dialect {
        Dialect::Sqlite => (
            "INTEGER",
            "REAL",
            "length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^a-z0-9-]*'",
        ),
        Dialect::Postgres => ("BIGINT", "DOUBLE PRECISION", "id ~ '^[a-z0-9-]{1,64}$'"),
    };
    SCHEMA
        .replace("{int}", int)
        .replace("{real}", real)
        .replace("{id_check}", id_check)
}

/// A cooperative project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// Its id, `[a-z0-9-]{1,64}` (`ecole-jaures`).
    pub id: String,
    /// Its title, for people.
    pub title: String,
    /// What it is, for people.
    pub description: String,
    /// Shares it is cut into, above 0.
    pub total_shares: u64,
    /// The price of one share, in `currency`, not negative.
    pub share_price: f64,
    /// ISO 4217 code (`EUR`).
    pub currency: String,
    /// Area of its panels, m², above 0.
    pub panel_area_m2: f64,
    /// The stream of the plant's production (power or energy).
    pub production_stream: String,
    /// The yearly maintenance budget, in `currency`, not negative.
    pub maintenance_budget: f64,
    /// When it was commissioned, `YYYY-MM-DD`.
    pub commissioned: String,
}

/// Shares of a project held by an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Investment {
    /// The account holding them.
    pub account: String,
    /// How many, above 0.
    pub shares: u64,
}

fn invalid(field: &'static str, detail: impl Into<String>) -> Error {
    Error::Field {
        field,
        detail: detail.into(),
    }
}

/// Checks a project id: `[a-z0-9-]{1,64}`.
pub fn check_project_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            "id",
            format!("project id {id:?}: give 1 to 64 of a-z, 0-9 and -"),
        ));
    }
    Ok(())
}

/// Checks an account name: `[a-z0-9._-]{1,64}`.
pub fn check_account(account: &str) -> Result<()> {
    if account.is_empty()
        || account.len() > 64
        || !account.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
    {
        return Err(invalid(
            "account",
            format!("account {account:?}: give 1 to 64 of a-z, 0-9, ., _ and -"),
        ));
    }
    Ok(())
}

impl Project {
    /// Checks every field, the first wrong one named in the error.
    pub fn check(&self) -> Result<()> {
        check_project_id(&self.id)?;
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return Err(invalid("title", "title: give 1 to 200 characters"));
        }
        if self.description.len() > 10_000 {
            return Err(invalid("description", "description: at most 10000 bytes"));
        }
        if self.total_shares == 0 || self.total_shares > i64::MAX as u64 {
            return Err(invalid(
                "total_shares",
                "total_shares must be a whole number above 0",
            ));
        }
        let not_negative = |field: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("{field} must be a number ≥ 0")))
            }
        };
        not_negative("share_price", self.share_price)?;
        not_negative("maintenance_budget", self.maintenance_budget)?;
        if !(self.panel_area_m2.is_finite() && self.panel_area_m2 > 0.0) {
            return Err(invalid(
                "panel_area_m2",
                "panel_area_m2 must be a number above 0",
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "currency",
                format!("currency {:?}: give an ISO 4217 code (EUR)", self.currency),
            ));
        }
        if self.production_stream.is_empty() || self.production_stream.len() > 1000 {
            return Err(invalid(
                "production_stream",
                "production_stream: name the stream of the plant's production",
            ));
        }
        let date: std::result::Result<jiff::civil::Date, _> = self.commissioned.parse();
        if self.commissioned.len() != 10 || date.is_err() {
            return Err(invalid(
                "commissioned",
                format!(
                    "commissioned {:?}: give a date, YYYY-MM-DD",
                    self.commissioned
                ),
            ));
        }
        Ok(())
    }
}

const COLUMNS: &str = "id, title, description, total_shares, share_price, currency, \
     panel_area_m2, production_stream, maintenance_budget, commissioned";

fn from_row(r: &[Cell]) -> Result<Project> {
    Ok(Project {
        id: r[0].text()?,
        title: r[1].text()?,
        description: r[2].text()?,
        total_shares: r[3].int()?.max(0) as u64,
        share_price: r[4].real()?,
        currency: r[5].text()?,
        panel_area_m2: r[6].real()?,
        production_stream: r[7].text()?,
        maintenance_budget: r[8].real()?,
        commissioned: r[9].text()?,
    })
}

fn params(p: &Project) -> [Param<'_>; 10] {
    [
        Param::Text(Some(&p.id)),
        Param::Text(Some(&p.title)),
        Param::Text(Some(&p.description)),
        Param::Int(Some(p.total_shares as i64)),
        Param::Real(Some(p.share_price)),
        Param::Text(Some(&p.currency)),
        Param::Real(Some(p.panel_area_m2)),
        Param::Text(Some(&p.production_stream)),
        Param::Real(Some(p.maintenance_budget)),
        Param::Text(Some(&p.commissioned)),
    ]
}

pub(crate) fn all(db: &mut dyn Db) -> Result<Vec<Project>> {
    db.query(&format!("SELECT {COLUMNS} FROM projects ORDER BY id"), &[])?
        .iter()
        .map(|r| from_row(r))
        .collect()
}

pub(crate) fn of_account(db: &mut dyn Db, account: &str) -> Result<Vec<Project>> {
    db.query(
        &format!(
            "SELECT {COLUMNS} FROM projects WHERE id IN
             (SELECT project FROM investments WHERE account = $1) ORDER BY id"
        ),
        &[Param::Text(Some(account))],
    )?
    .iter()
    .map(|r| from_row(r))
    .collect()
}

/// The project `id`; on PostgreSQL its row is locked until the transaction
/// ends when `lock` is set, so that two investments written at once are
/// checked one after the other.
pub(crate) fn one(db: &mut dyn Db, id: &str, lock: bool) -> Result<Option<Project>> {
    let lock = if lock && db.dialect() == Dialect::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    db.query(
        &format!("SELECT {COLUMNS} FROM projects WHERE id = $1{lock}"),
        &[Param::Text(Some(id))],
    )?
    .first()
    .map(|r| from_row(r))
    .transpose()
}

pub(crate) fn insert(db: &mut dyn Db, p: &Project) -> Result<()> {
    db.execute(
        &format!(
            "INSERT INTO projects ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        &params(p),
    )?;
    Ok(())
}

pub(crate) fn update(db: &mut dyn Db, p: &Project) -> Result<()> {
    db.execute(
        "UPDATE projects SET title = $2, description = $3, total_shares = $4,
         share_price = $5, currency = $6, panel_area_m2 = $7, production_stream = $8,
         maintenance_budget = $9, commissioned = $10 WHERE id = $1",
        &params(p),
    )?;
    Ok(())
}

pub(crate) fn delete(db: &mut dyn Db, id: &str) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM projects WHERE id = $1",
        &[Param::Text(Some(id))],
    )? > 0)
}

pub(crate) fn investments(db: &mut dyn Db, project: &str) -> Result<Vec<Investment>> {
    db.query(
        "SELECT account, shares FROM investments WHERE project = $1 ORDER BY account",
        &[Param::Text(Some(project))],
    )?
    .iter()
    .map(|r| {
        Ok(Investment {
            account: r[0].text()?,
            shares: r[1].int()?.max(0) as u64,
        })
    })
    .collect()
}

/// Shares held in `project` by accounts other than `except`.
pub(crate) fn shares_held(db: &mut dyn Db, project: &str, except: Option<&str>) -> Result<u64> {
    let rows = db.query(
        "SELECT CAST(COALESCE(SUM(shares), 0) AS BIGINT) FROM investments
         WHERE project = $1 AND account <> $2",
        // No account is named "": it stands for none.
        &[
            Param::Text(Some(project)),
            Param::Text(Some(except.unwrap_or(""))),
        ],
    )?;
    Ok(rows
        .first()
        .map(|r| r[0].opt_int())
        .transpose()?
        .flatten()
        .unwrap_or(0)
        .max(0) as u64)
}

pub(crate) fn put_investment(
    db: &mut dyn Db,
    project: &str,
    account: &str,
    shares: u64,
) -> Result<()> {
    db.execute(
        "INSERT INTO investments (project, account, shares) VALUES ($1, $2, $3)
         ON CONFLICT (project, account) DO UPDATE SET shares = excluded.shares",
        &[
            Param::Text(Some(project)),
            Param::Text(Some(account)),
            Param::Int(Some(shares as i64)),
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_investment(db: &mut dyn Db, project: &str, account: &str) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM investments WHERE project = $1 AND account = $2",
        &[Param::Text(Some(project)), Param::Text(Some(account))],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn school() -> Project {
        Project {
            id: "ecole-jaures".into(),
            title: "Centrale solaire".into(),
            description: String::new(),
            total_shares: 400,
            share_price: 150.0,
            currency: "EUR".into(),
            panel_area_m2: 96.0,
            production_stream: "pv".into(),
            maintenance_budget: 1200.0,
            commissioned: "2025-01-01".into(),
        }
    }

    fn field_of(p: Project) -> &'static str {
        match p.check() {
            Err(Error::Field { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_wrong_field_is_named() {
        assert!(school().check().is_ok());
        assert_eq!(
            field_of(Project {
                id: "École".into(),
                ..school()
            }),
            "id"
        );
        assert_eq!(
            field_of(Project {
                total_shares: 0,
                ..school()
            }),
            "total_shares"
        );
        assert_eq!(
            field_of(Project {
                share_price: -1.0,
                ..school()
            }),
            "share_price"
        );
        assert_eq!(
            field_of(Project {
                panel_area_m2: 0.0,
                ..school()
            }),
            "panel_area_m2"
        );
        assert_eq!(
            field_of(Project {
                maintenance_budget: f64::NAN,
                ..school()
            }),
            "maintenance_budget"
        );
        assert_eq!(
            field_of(Project {
                currency: "eur".into(),
                ..school()
            }),
            "currency"
        );
        assert_eq!(
            field_of(Project {
                commissioned: "2025-02-30".into(),
                ..school()
            }),
            "commissioned"
        );
        assert!(check_account("jean-marc.o_1").is_ok());
        assert!(check_account("Alice").is_err());
        assert!(check_account("").is_err());
    }
}
