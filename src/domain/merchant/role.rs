//! Who may do what in the console. Owners everything; admins users, settings and
//! campaigns; managers campaigns, stats and export; staff only the redemption screen.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Invite, disable, change roles.
    ManageUsers,
    /// Tenant settings: theme, logo, check codes, MFA, IP allow-list.
    ManageSettings,
    /// Create, edit and run campaigns and stores.
    ManageCampaigns,
    /// Campaign counts and the dashboard.
    ViewStats,
    /// CSV export.
    Export,
    /// The staff redemption screen.
    Redeem,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("role must be one of owner, admin, manager, staff")]
pub struct InvalidRole;

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Manager, Role::Staff];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Staff => "staff",
        }
    }

    pub fn can(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => true,
            Role::Manager => matches!(p, ManageCampaigns | ViewStats | Export | Redeem),
            Role::Staff => matches!(p, Redeem),
        }
    }

    /// Whether a user of this role may hand out `other` (invite or change someone to it):
    /// only owners make owners, and nobody hands out more than they have.
    pub fn may_grant(self, other: Role) -> bool {
        self.can(Permission::ManageUsers) && (other != Role::Owner || self == Role::Owner)
    }

    /// The page a signed-in user lands on.
    pub fn home(self) -> &'static str {
        if self == Role::Staff {
            "/merchant/redeem"
        } else {
            "/merchant"
        }
    }
}

impl FromStr for Role {
    type Err = InvalidRole;
    fn from_str(s: &str) -> Result<Role, InvalidRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(InvalidRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn role_table() {
        let all = [
            ManageUsers,
            ManageSettings,
            ManageCampaigns,
            ViewStats,
            Export,
            Redeem,
        ];
        #[rustfmt::skip]
        let table = [(Role::Owner, [true, true, true, true, true, true]),
                     (Role::Admin, [true, true, true, true, true, true]),
                     (Role::Manager, [false, false, true, true, true, true]),
                     (Role::Staff, [false, false, false, false, false, true])];
        for (role, row) in table {
            assert_eq!(role.as_str().parse(), Ok(role));
            for (p, want) in all.iter().zip(row) {
                assert_eq!(role.can(*p), want, "{role} {p:?}");
            }
        }
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(!Role::Admin.may_grant(Role::Owner) && Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Manager.may_grant(Role::Staff));
        assert_eq!("boss".parse::<Role>(), Err(InvalidRole));
        assert_eq!(Role::Staff.home(), "/merchant/redeem");
    }
}
