//! Cooperative projects and their investors.

use crate::Store;
use crate::error::{Error, Result};
use crate::projects::{self, Investment, Project, check_account, check_project_id};

fn no_project(id: &str) -> Error {
    Error::NotFound(format!("no project {id:?}"))
}

impl Store {
    /// Every project, by id.
    pub fn projects(&self) -> Result<Vec<Project>> {
        self.read(projects::all)
    }

    /// The projects in which `account` holds shares, by id.
    pub fn projects_of(&self, account: &str) -> Result<Vec<Project>> {
        self.read(|db| projects::of_account(db, account))
    }

    /// One project.
    pub fn project(&self, id: &str) -> Result<Option<Project>> {
        self.read(|db| projects::one(db, id, false))
    }

    /// Adds a project, checked whole; a conflict if its id is taken.
    pub fn add_project(&self, project: &Project) -> Result<Project> {
        project.check()?;
        self.write(|db| {
            if projects::one(db, &project.id, true)?.is_some() {
                return Err(Error::Conflict(format!(
                    "a project {:?} exists already",
                    project.id
                )));
            }
            projects::insert(db, project)?;
            Ok(project.clone())
        })
    }

    /// Replaces a project's fields (its id stays). Refused, naming
    /// `total_shares`, when its investors hold more shares than the new total.
    pub fn update_project(&self, project: &Project) -> Result<Project> {
        project.check()?;
        self.write(|db| {
            projects::one(db, &project.id, true)?.ok_or_else(|| no_project(&project.id))?;
            let held = projects::shares_held(db, &project.id, None)?;
            if held > project.total_shares {
                return Err(Error::Field {
                    field: "total_shares",
                    detail: format!(
                        "total_shares {}: investors hold {held} shares already",
                        project.total_shares
                    ),
                });
            }
            projects::update(db, project)?;
            Ok(project.clone())
        })
    }

    /// Deletes a project and its investments; `false` if there was none.
    pub fn remove_project(&self, id: &str) -> Result<bool> {
        self.write(|db| projects::delete(db, id))
    }

    /// The investors of a project, by account.
    pub fn investments(&self, project: &str) -> Result<Vec<Investment>> {
        self.read(|db| {
            projects::one(db, project, false)?.ok_or_else(|| no_project(project))?;
            projects::investments(db, project)
        })
    }

    /// The shares `account` holds in `project` (0 for none).
    pub fn shares_of(&self, project: &str, account: &str) -> Result<u64> {
        self.read(|db| {
            Ok(projects::investments(db, project)?
                .into_iter()
                .find(|i| i.account == account)
                .map_or(0, |i| i.shares))
        })
    }

    /// Sets the shares `account` holds in `project`. Refused, naming
    /// `shares`, when the project's shares would add up to more than its
    /// total; checked in the transaction that writes.
    pub fn set_investment(&self, project: &str, account: &str, shares: u64) -> Result<Investment> {
        check_project_id(project)?;
        check_account(account)?;
        if shares == 0 || shares > i64::MAX as u64 {
            return Err(Error::Field {
                field: "shares",
                detail: "shares must be a whole number above 0".into(),
            });
        }
        self.write(|db| {
            let p = projects::one(db, project, true)?.ok_or_else(|| no_project(project))?;
            let others = projects::shares_held(db, project, Some(account))?;
            if others.saturating_add(shares) > p.total_shares {
                return Err(Error::Field {
                    field: "shares",
                    detail: format!(
                        "shares {shares}: {others} of the project's {} shares are held by others, {} remain",
                        p.total_shares,
                        p.total_shares.saturating_sub(others)
                    ),
                });
            }
            projects::put_investment(db, project, account, shares)?;
            Ok(Investment {
                account: account.to_owned(),
                shares,
            })
        })
    }

    /// Removes `account`'s shares in `project`; `false` if it held none.
    pub fn remove_investment(&self, project: &str, account: &str) -> Result<bool> {
        self.write(|db| projects::delete_investment(db, project, account))
    }
}
