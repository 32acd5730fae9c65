//! A campaign's life: draft → active ⇄ paused → ended, and the actions that move it.

use super::{CampaignError, Result};

/// Enum plus its stable string form. The strings are stored in the database and appear
/// in URLs and JSON, so they are spelled out rather than derived.
macro_rules! str_enum {
    ($name:ident, $err:expr, { $($variant:ident = $s:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];
            pub const fn as_str(self) -> &'static str { match self { $(Self::$variant => $s),+ } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = CampaignError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok(Self::$variant),)+ _ => Err($err) }
            }
        }
    };
}

str_enum!(CampaignStatus, CampaignError::InvalidStatus, {
    Draft = "draft", Active = "active", Paused = "paused", Ended = "ended",
});
str_enum!(StatusAction, CampaignError::InvalidAction, {
    Activate = "activate", Pause = "pause", Resume = "resume", End = "end",
});

impl CampaignStatus {
    /// Ended is terminal: a finished campaign's accounting is never reopened.
    pub fn apply(self, action: StatusAction) -> Result<CampaignStatus> {
        use CampaignStatus::*;
        match (self, action) {
            (Draft, StatusAction::Activate) => Ok(Active),
            (Active, StatusAction::Pause) => Ok(Paused),
            (Paused, StatusAction::Resume) => Ok(Active),
            (Draft | Active | Paused, StatusAction::End) => Ok(Ended),
            (from, action) => Err(CampaignError::InvalidTransition { from, action }),
        }
    }

    /// The actions that make sense from here, e.g. for the buttons of an editor.
    pub fn actions(self) -> impl Iterator<Item = StatusAction> {
        StatusAction::ALL
            .iter()
            .copied()
            .filter(move |a| self.apply(*a).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions() {
        use CampaignStatus::*;
        use StatusAction as A;
        // Expected outcome of each action (columns) from each status (rows).
        #[rustfmt::skip]
        let table = [(Draft, [Some(Active), None, None, Some(Ended)]),
                     (Active, [None, Some(Paused), None, Some(Ended)]),
                     (Paused, [None, None, Some(Active), Some(Ended)]),
                     (Ended, [None, None, None, None])];
        let actions = [A::Activate, A::Pause, A::Resume, A::End];
        for (from, row) in table {
            assert_eq!(from.as_str().parse(), Ok(from));
            assert_eq!(serde_json::to_string(&from).unwrap(), format!("\"{from}\""));
            for (action, to) in actions.into_iter().zip(row) {
                let refused = CampaignError::InvalidTransition { from, action };
                assert_eq!(from.apply(action), to.ok_or(refused));
            }
            assert_eq!(from.actions().count(), row.iter().flatten().count());
        }
        let msg = Ended.apply(A::Resume).unwrap_err().to_string();
        assert_eq!(msg, "cannot resume a campaign whose status is ended");
        let bad = "End".parse::<StatusAction>().unwrap_err();
        assert_eq!(bad.code(), "invalid_action");
    }
}
